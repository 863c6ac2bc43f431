# docs/configuration.md is generated from the programs' configuration tables: regenerate
# it with docs/gen-config.sh into a temporary file and compare with the committed one.
import difflib
import os
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("PIXPLANE_BUILD", "build"))
GEN = os.path.join(ROOT, "docs", "gen-config.sh")
DOC = os.path.join(ROOT, "docs", "configuration.md")
PROGRAMS = ("pixplane-api", "pixplane-worker", "pixplane-reconciler")


def generate(path):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PIXPLANE_BUILD": BUILD}
    r = subprocess.run([GEN, path], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, "docs/gen-config.sh failed: %s" % r.stderr
    with open(path, encoding="utf-8") as f:
        return f.read()


def test_configuration_md_matches_the_tables():
    with tempfile.TemporaryDirectory() as d:
        fresh = generate(os.path.join(d, "configuration.md"))
    with open(DOC, encoding="utf-8") as f:
        committed = f.read()
    if fresh != committed:
        diff = "".join(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True),
                                            "docs/configuration.md (committed)",
                                            "generated from %s" % BUILD))
        raise AssertionError("docs/configuration.md is stale: run docs/gen-config.sh\n" + diff)


def test_generation_is_deterministic():
    with tempfile.TemporaryDirectory() as d:
        a = generate(os.path.join(d, "a.md"))
        b = generate(os.path.join(d, "b.md"))
    assert a == b


def test_every_program_documented():
    with open(DOC, encoding="utf-8") as f:
        doc = f.read()
    for p in PROGRAMS:
        assert "\n## %s\n" % p in doc, "%s missing from docs/configuration.md" % p
    # the settings the deployment relies on are documented
    for env in ("DATABASE_URL", "S3_ENDPOINT", "S3_PUBLIC_ENDPOINT", "S3_PATH_STYLE",
                "PIXPLANE_JWT_SECRET", "PIXPLANE_LISTEN", "PIXPLANE_DRAIN_TIMEOUT",
                "KAFKA_BOOTSTRAP"):
        assert "`%s`" % env in doc, env
