# docs/openapi.yaml against the router: every route of `pixplane-api routes` is described
# and every described operation is a route (path parameters compared by position, not
# name); plus the spec's own consistency: path parameters declared, $refs resolve, errors
# use the common error schema, public and admin routes marked.
import os
import re
import subprocess

import pytest

try:
    import yaml
except ImportError as e:  # pragma: no cover - a missing package must fail loudly in CI
    raise ImportError("python3-yaml is missing: add it to minio-dev/install-deps") from e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("PIXPLANE_BUILD", "build"))
API_BIN = os.path.join(BUILD, "pixplane-api")
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
PUBLIC = {"/healthz", "/readyz", "/s/{token}", "/s/{token}/unlock"}  # public links: no auth
ADMIN = {"/metrics"}  # besides /internal/*: the public port's metrics need an admin token


def norm(path):
    return re.sub(r"\{[^}/]+\}", "{}", path)


@pytest.fixture(scope="module")
def spec():
    with open(SPEC, encoding="utf-8") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def routes():
    assert os.access(API_BIN, os.X_OK), "%s not built (make)" % API_BIN
    # a clean environment: the stack's settings are not needed to list routes
    env = {k: v for k, v in os.environ.items() if k == "PATH" or k.endswith("SAN_OPTIONS")}
    out = subprocess.run([API_BIN, "routes"], capture_output=True, text=True, timeout=30,
                         env=env, check=True).stdout
    rs = set()
    for line in out.splitlines():
        method, path = line.split()
        rs.add((method.upper(), path))
    assert rs, "pixplane-api routes printed nothing"
    return rs


def operations(spec):
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item, item[method]


def test_every_route_is_described_and_nothing_else(spec, routes):
    described = {(m.upper(), norm(p)) for p, m, _, _ in operations(spec)}
    routed = {(m, norm(p)) for m, p in routes}
    missing = sorted("%s %s" % r for r in routed - described)
    extra = sorted("%s %s" % r for r in described - routed)
    assert not missing and not extra, (
        "docs/openapi.yaml out of step with the router:\n  routes not in the spec: %s\n"
        "  spec operations that are no route: %s" % (missing, extra))


def test_path_templates_are_unique_after_normalising(spec):
    seen = {}
    for p in spec["paths"]:
        assert norm(p) not in seen, "%s and %s are the same route" % (p, seen[norm(p)])
        seen[norm(p)] = p


def test_openapi_version_and_security(spec):
    assert str(spec["openapi"]).startswith("3.0"), spec["openapi"]
    assert spec["info"]["title"] and spec["info"]["version"]
    schemes = spec["components"]["securitySchemes"]
    bearer = [s for s in schemes.values() if s.get("type") == "http" and s.get("scheme") == "bearer"]
    assert bearer, "no bearer security scheme"
    assert spec.get("security"), "no default security requirement"


def resolve(spec, ref):
    assert ref.startswith("#/"), "external $ref %s" % ref
    node = spec
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, "unresolved $ref %s" % ref
        node = node[part]
    return node


def walk_refs(spec, node):
    if isinstance(node, dict):
        if "$ref" in node:
            resolve(spec, node["$ref"])
        for v in node.values():
            walk_refs(spec, v)
    elif isinstance(node, list):
        for v in node:
            walk_refs(spec, v)


def test_refs_resolve(spec):
    walk_refs(spec, spec)


def deref(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(spec, node["$ref"])
    return node


def test_path_parameters_declared(spec):
    for path, method, item, op in operations(spec):
        params = [deref(spec, p) for p in item.get("parameters", []) + op.get("parameters", [])]
        declared = {p["name"] for p in params if p["in"] == "path"}
        for p in params:
            if p["in"] == "path":
                assert p.get("required") is True, "%s %s: path parameter %s not required" % (
                    method, path, p["name"])
        used = set(re.findall(r"\{([^}/]+)\}", path))
        assert used == declared, "%s %s: template has %s, declared %s" % (
            method.upper(), path, sorted(used), sorted(declared))


def error_schema_ok(spec, schema):
    schema = deref(spec, schema)
    if "allOf" in schema:
        return any(error_schema_ok(spec, s) for s in schema["allOf"])
    err = deref(spec, (schema.get("properties") or {}).get("error") or {})
    return ("error" in schema.get("required", [])
            and {"code", "message"} <= set(err.get("required", [])))


def test_operations_have_responses_and_error_bodies(spec):
    ids = set()
    for path, method, _, op in operations(spec):
        where = "%s %s" % (method.upper(), path)
        assert op.get("operationId") and op["operationId"] not in ids, where
        ids.add(op["operationId"])
        codes = {str(c) for c in op["responses"]}
        assert any(c[0] in "23" for c in codes), "%s: no success response" % where
        for code, resp in op["responses"].items():
            resp = deref(spec, resp)
            assert resp.get("description"), "%s %s: no description" % (where, code)
            if str(code)[0] in "45" and (path, str(code)) != ("/readyz", "503"):
                schema = resp["content"]["application/json"]["schema"]
                assert error_schema_ok(spec, schema), \
                    "%s %s: not the error schema {error:{code,message}}" % (where, code)


def test_public_and_authenticated_routes(spec):
    for path, method, _, op in operations(spec):
        where = "%s %s" % (method.upper(), path)
        if path in PUBLIC:
            assert op.get("security") == [], "%s must be marked public (security: [])" % where
            continue
        assert op.get("security", spec["security"]), "%s has no security" % where
        assert "401" in {str(c) for c in op["responses"]}, "%s: 401 not documented" % where
        assert "429" in {str(c) for c in op["responses"]}, "%s: 429 not documented" % where
        if path.startswith("/internal/") or path in ADMIN:
            assert "403" in {str(c) for c in op["responses"]}, "%s: admin 403 missing" % where
