# deploy/: renders the kustomize overlays with `kubectl kustomize` and checks the rendered
# objects (kinds, probes, resources, securityContext, no inline secrets, overlay sizing,
# prod's CloudNativePG Cluster and Strimzi Kafka wired to the programs, dev without them),
# and checks the Dockerfile statically (no container engine here to build it).
import os
import re
import shutil
import subprocess
import urllib.parse

import pytest

try:
    import yaml
except ImportError as e:  # pragma: no cover - a missing package must fail loudly in CI
    raise ImportError("python3-yaml is missing: add it to minio-dev/install-deps") from e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
OVERLAYS = ("dev", "prod")
BUILD = os.path.join(ROOT, os.environ.get("PIXPLANE_BUILD", "build"))

SECRET_NAME = "pixplane-secrets"
# prod: PostgreSQL's credentials are the CloudNativePG Cluster's bootstrap owner Secret,
# read by libpq as PGUSER / PGPASSWORD; the URLs then name hosts only
DB_SECRET = "pixplane-db-owner"
DB_SECRET_KEYS = {"PGUSER": "username", "PGPASSWORD": "password"}
DB_URL_ENV = ("DATABASE_URL", "DATABASE_READ_URL")
OPERATOR_KINDS = ("Cluster", "Kafka", "KafkaNodePool", "KafkaTopic", "PodMonitor")
SECRET_ENV = {"DATABASE_URL", "S3_ACCESS_KEY", "S3_SECRET_KEY", "PIXPLANE_JWT_SECRET",
              "PIXPLANE_KAFKA_OPTIONS"}
RUNTIME_PKGS = {"libev4", "libhttp-parser2.9", "libcjson1", "libpq5", "libcurl4", "libssl3",
                "librdkafka1", "libvips42", "ca-certificates"}
PROGRAMS = ("pixplane-api", "pixplane-worker", "pixplane-reconciler", "pixplane-hooks", "pixctl")
POD_KINDS = ("Deployment", "Job", "CronJob")


# ---------------------------------------------------------------- rendering

def kubectl():
    path = shutil.which("kubectl")
    if not path:
        pytest.skip("no kubectl on PATH (Debian package kubernetes-client); "
                    "cannot render deploy/k8s overlays")
    return path


_rendered = {}


def render(overlay):
    if overlay not in _rendered:
        d = os.path.join(DEPLOY, "k8s", "overlays", overlay)
        r = subprocess.run([kubectl(), "kustomize", d], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, "kubectl kustomize %s failed:\n%s" % (d, r.stderr)
        _rendered[overlay] = [o for o in yaml.safe_load_all(r.stdout) if o]
    return _rendered[overlay]


def of_kind(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def one(objs, kind, name):
    found = [o for o in of_kind(objs, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, "expected one %s %s, found %d" % (kind, name, len(found))
    return found[0]


def pod_spec(obj):
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def workloads(objs):
    return [o for o in objs if o.get("kind") in POD_KINDS]


def containers(spec):
    return list(spec.get("initContainers") or []) + list(spec["containers"])


def env_value(c, name):
    """The literal value of environment variable name in container c, else None."""
    found = [e.get("value") for e in c.get("env", []) if e["name"] == name]
    return found[0] if found else None


def config_data(objs):
    cms = of_kind(objs, "ConfigMap")
    assert len(cms) == 1, "expected one ConfigMap, found %d" % len(cms)
    return cms[0]["metadata"]["name"], cms[0].get("data") or {}


def parse_secs(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", text.strip())
    assert m, "not a duration: %r" % text
    mult = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return float(m.group(1)) * mult


def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError("container %s has no port named %s" % (container["name"], port))


@pytest.fixture(params=OVERLAYS)
def overlay(request):
    return request.param


@pytest.fixture
def objs(overlay):
    return render(overlay)


# ---------------------------------------------------------------- kinds and wiring

def test_kinds_present(objs):
    kinds = {}
    for o in objs:
        kinds[o["kind"]] = kinds.get(o["kind"], 0) + 1
    assert kinds.get("Deployment") == 3, kinds
    for k in ("Service", "CronJob", "Job", "ConfigMap", "PodDisruptionBudget",
              "HorizontalPodAutoscaler"):
        assert kinds.get(k, 0) >= 1, "no %s rendered (%s)" % (k, kinds)
    names = {o["metadata"]["name"] for o in of_kind(objs, "Deployment")}
    assert names == {"pixplane-api", "pixplane-worker", "pixplane-hooks"}, names


def test_api_service_pdb_hpa(objs):
    api = one(objs, "Deployment", "pixplane-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    sel_ok = lambda sel: sel and all(labels.get(k) == v for k, v in sel.items())

    svcs = [s for s in of_kind(objs, "Service") if sel_ok(s["spec"].get("selector"))]
    assert svcs, "no Service selects the API pods"
    c = api["spec"]["template"]["spec"]["containers"][0]
    assert any(port_number(c, p["targetPort"]) == 8080 for p in svcs[0]["spec"]["ports"])
    assert any(p["containerPort"] == 8080 for p in c["ports"])

    pdbs = of_kind(objs, "PodDisruptionBudget")
    assert any(p["apiVersion"] == "policy/v1" and sel_ok(p["spec"]["selector"]["matchLabels"])
               for p in pdbs), "no policy/v1 PodDisruptionBudget for the API pods"

    hpas = of_kind(objs, "HorizontalPodAutoscaler")
    assert len(hpas) == 1
    h = hpas[0]
    assert h["apiVersion"] == "autoscaling/v2"
    assert h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                           "name": "pixplane-api"}
    cpu = [m for m in h["spec"]["metrics"]
           if m["type"] == "Resource" and m["resource"]["name"] == "cpu"]
    assert cpu, "HPA does not scale on CPU"
    assert 1 <= h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"]
    assert api["spec"]["replicas"] == h["spec"]["minReplicas"], \
        "API replicas %s != HPA minReplicas %s" % (api["spec"]["replicas"], h["spec"]["minReplicas"])


def test_cronjob_and_migration_job(objs):
    cjs = of_kind(objs, "CronJob")
    assert len(cjs) == 1
    cj = cjs[0]
    assert cj["apiVersion"] == "batch/v1"
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(cj["spec"]["schedule"].split()) == 5
    spec = pod_spec(cj)
    assert spec["restartPolicy"] in ("Never", "OnFailure")
    cmd = " ".join(spec["containers"][0].get("command", []) + spec["containers"][0].get("args", []))
    assert "pixplane-reconciler --once" in cmd, cmd

    jobs = of_kind(objs, "Job")
    assert len(jobs) == 1
    spec = pod_spec(jobs[0])
    c = spec["containers"][0]
    assert c.get("command", []) + c.get("args", []) == ["pixplane-api", "migrate"]
    assert spec["restartPolicy"] in ("Never", "OnFailure")


def test_config_and_secret_references(objs):
    cm_name, _ = config_data(objs)
    for w in workloads(objs):
        for c in containers(pod_spec(w)):
            refs = [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
            assert refs == [cm_name], "%s/%s: envFrom configMapRef %s, rendered ConfigMap %s" % (
                w["metadata"]["name"], c["name"], refs, cm_name)
            for e in c.get("envFrom", []):
                if "secretRef" in e:
                    assert e["secretRef"]["name"] == SECRET_NAME
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert (ref["name"], ref["key"]) in ((SECRET_NAME, e["name"]), (
                        DB_SECRET, DB_SECRET_KEYS.get(e["name"]))), e
            needs = {"DATABASE_URL"}
            if w["metadata"]["name"] == "pixplane-api":
                needs |= {"S3_ACCESS_KEY", "S3_SECRET_KEY", "PIXPLANE_JWT_SECRET"}
            got = {e["name"] for e in c.get("env", []) if (e.get("valueFrom") or {}).get("secretKeyRef")}
            if "PGPASSWORD" in got and env_value(c, "DATABASE_URL"):
                got.add("DATABASE_URL")  # a URL of hosts, the password from the DB Secret
            if any("secretRef" in e for e in c.get("envFrom", [])):
                got |= needs
            assert needs <= got, "%s/%s lacks secret refs for %s" % (
                w["metadata"]["name"], c["name"], sorted(needs - got))


# ---------------------------------------------------------------- no secrets in the repo

CREDENTIAL_PATTERNS = [
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),           # user:password@ in a URL
    re.compile(r"AKIA[0-9A-Z]{16}"),                  # AWS access key id
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."),  # a JWT
]


def test_no_inline_secrets(objs):
    for o in of_kind(objs, "Secret"):
        assert not o.get("data") and not o.get("stringData"), \
            "Secret %s carries data in the repository" % o["metadata"]["name"]
    _, data = config_data(objs)
    leaked = SECRET_ENV & set(data)
    assert not leaked, "secret settings in the ConfigMap: %s" % sorted(leaked)
    values = list(data.items())
    for w in workloads(objs):
        for c in containers(pod_spec(w)):
            for e in c.get("env", []):
                if e["name"] in DB_URL_ENV and "value" in e:
                    url = urllib.parse.urlsplit(e["value"])
                    assert "@" not in url.netloc and "password" not in url.query.lower(), \
                        "%s carries credentials in %s" % (e["name"], w["metadata"]["name"])
                    continue
                assert not (e["name"] in SECRET_ENV and "value" in e), \
                    "%s has a literal value in %s" % (e["name"], w["metadata"]["name"])
                if "value" in e:
                    values.append((e["name"], str(e["value"])))
    for name, value in values:
        if re.search(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|ACCESS_KEY", name):
            assert not value, "%s has a literal value" % name
        for pat in CREDENTIAL_PATTERNS:
            assert not pat.search(value), "%s looks like a credential: %r" % (name, value)


def test_no_secret_manifests_in_tree():
    for dirpath, _, files in os.walk(os.path.join(DEPLOY, "k8s")):
        for f in files:
            text = open(os.path.join(dirpath, f), encoding="utf-8").read()
            assert not re.search(r"^kind:\s*Secret\s*$", text, re.M), "%s defines a Secret" % f
            assert "secretGenerator" not in text, "%s generates a Secret" % f


# ---------------------------------------------------------------- pods

def test_every_container_has_resources(objs):
    for w in workloads(objs):
        for c in containers(pod_spec(w)):
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    assert (res.get(part) or {}).get(r), "%s/%s: no %s.%s" % (
                        w["metadata"]["name"], c["name"], part, r)


def test_every_container_is_locked_down(objs):
    for w in workloads(objs):
        spec = pod_spec(w)
        psc = spec.get("securityContext") or {}
        where = w["metadata"]["name"]
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, where
        for c in containers(spec):
            sc = dict(psc)
            sc.pop("fsGroup", None)
            sc.update(c.get("securityContext") or {})
            who = "%s/%s" % (where, c["name"])
            assert sc.get("runAsNonRoot") is True, who
            assert isinstance(sc.get("runAsUser"), int) and sc["runAsUser"] > 0, who
            assert (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is True, who
            assert (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is False, who
            assert sc.get("privileged") is not True, who
            drop = ((c.get("securityContext") or {}).get("capabilities") or {}).get("drop") or []
            assert "ALL" in drop, "%s: capabilities not dropped" % who
            assert not ((c.get("securityContext") or {}).get("capabilities") or {}).get("add"), who
            assert (sc.get("seccompProfile") or {}).get("type") == "RuntimeDefault", who


def test_writable_tmp_for_long_running_pods(objs):
    for name in ("pixplane-api", "pixplane-worker"):
        spec = pod_spec(one(objs, "Deployment", name))
        vols = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, "%s/%s: no /tmp mount" % (name, c["name"])
            assert "emptyDir" in vols[mounts["/tmp"]], name


def probe_get(c, kind):
    p = c.get(kind)
    assert p and "httpGet" in p, "container %s has no HTTP %s" % (c["name"], kind)
    return p["httpGet"]["path"], port_number(c, p["httpGet"]["port"])


def test_api_probes_and_drain(objs):
    _, data = config_data(objs)
    spec = pod_spec(one(objs, "Deployment", "pixplane-api"))
    c = spec["containers"][0]
    assert probe_get(c, "readinessProbe") == ("/readyz", 8080)
    assert probe_get(c, "livenessProbe") == ("/healthz", 8080)
    assert data.get("PIXPLANE_LISTEN", "").endswith(":8080")
    assert not data["PIXPLANE_LISTEN"].startswith("127."), "the API would listen on loopback"
    drain = parse_secs(data.get("PIXPLANE_DRAIN_TIMEOUT", "20s"))
    pre = 0
    exec_cmd = (((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command")
    if exec_cmd and exec_cmd[0].endswith("sleep"):
        pre = parse_secs(exec_cmd[1])
    grace = spec.get("terminationGracePeriodSeconds", 30)
    assert grace > drain + pre, "terminationGracePeriodSeconds %s <= drain %s + preStop %s" % (
        grace, drain, pre)


def test_worker_probes_and_shutdown(objs):
    _, data = config_data(objs)
    spec = pod_spec(one(objs, "Deployment", "pixplane-worker"))
    c = spec["containers"][0]
    assert c.get("command") == ["pixplane-worker"]
    assert probe_get(c, "readinessProbe") == ("/healthz", 9090)
    assert probe_get(c, "livenessProbe") == ("/healthz", 9090)
    assert data.get("PIXPLANE_WORKER_LISTEN", "").endswith(":9090")
    stop = parse_secs(data.get("PIXPLANE_SHUTDOWN_TIMEOUT", "20s"))
    assert spec.get("terminationGracePeriodSeconds", 30) > stop


def test_hooks_probes_shutdown_and_no_allowed_private_addresses(objs):
    _, data = config_data(objs)
    spec = pod_spec(one(objs, "Deployment", "pixplane-hooks"))
    c = spec["containers"][0]
    assert c.get("command") == ["pixplane-hooks"]
    assert probe_get(c, "readinessProbe") == ("/healthz", 9092)
    assert probe_get(c, "livenessProbe") == ("/healthz", 9092)
    assert data.get("PIXPLANE_HOOKS_LISTEN", "").endswith(":9092")
    stop = parse_secs(data.get("PIXPLANE_SHUTDOWN_TIMEOUT", "20s"))
    assert spec.get("terminationGracePeriodSeconds", 30) > stop
    # production refuses private, loopback and metadata addresses (the SSRF guard's default)
    assert not data.get("PIXPLANE_WEBHOOK_ALLOW_ADDRS")
    assert not [e for e in c.get("env", []) if e["name"] == "PIXPLANE_WEBHOOK_ALLOW_ADDRS"]


def test_configmap_keys_are_real_settings(objs):
    """Every ConfigMap key is a variable some program reads (docs/configuration.md, which
    test_config_doc keeps equal to the binaries' tables): catches typos and settings a
    program does not have (yet)."""
    doc = open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8").read()
    known = set(re.findall(r"\| `([A-Z][A-Z0-9_]+)` \|", doc))
    _, data = config_data(objs)
    unknown = sorted(set(data) - known)
    assert not unknown, "ConfigMap sets variables no program reads: %s" % unknown


# ---------------------------------------------------------------- overlays

def cpu_millis(v):
    v = str(v)
    return float(v[:-1]) if v.endswith("m") else float(v) * 1000


def mem_bytes(v):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?", str(v))
    mult = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
            "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}[m.group(2)]
    return float(m.group(1)) * mult


def limits(objs, name):
    c = pod_spec(one(objs, "Deployment", name))["containers"][0]
    return c["resources"]["limits"]


def test_dev_overlay():
    objs = render("dev")
    for name in ("pixplane-api", "pixplane-worker"):
        assert one(objs, "Deployment", name)["spec"]["replicas"] == 1, name
    assert of_kind(objs, "HorizontalPodAutoscaler")[0]["spec"]["minReplicas"] == 1
    _, data = config_data(objs)
    assert "minio" in data["S3_ENDPOINT"] and data["S3_PATH_STYLE"] == "true"


def test_prod_overlay():
    objs = render("prod")
    for name in ("pixplane-api", "pixplane-worker"):
        assert one(objs, "Deployment", name)["spec"]["replicas"] >= 3, name
    assert of_kind(objs, "HorizontalPodAutoscaler")[0]["spec"]["minReplicas"] >= 3
    dev = render("dev")
    for name in ("pixplane-api", "pixplane-worker"):
        p, d = limits(objs, name), limits(dev, name)
        assert cpu_millis(p["cpu"]) > cpu_millis(d["cpu"]), name
        assert mem_bytes(p["memory"]) > mem_bytes(d["memory"]), name
    for w in workloads(objs):
        for c in containers(pod_spec(w)):
            img = c["image"]
            pinned = "@sha256:" in img or re.search(r":[\w][\w.-]*$", img.rsplit("/", 1)[-1])
            assert pinned and not img.endswith(":latest"), "prod image not pinned: %s" % img


def test_dev_overlay_runs_no_operators():
    """dev keeps single instances of PostgreSQL and Kafka of its own: no operator resource,
    and the database URL comes from pixplane-secrets."""
    objs = render("dev")
    kinds = sorted({o["kind"] for o in objs if o["kind"] in OPERATOR_KINDS})
    assert not kinds, "dev renders operator resources: %s" % kinds
    for w in workloads(objs):
        for c in containers(pod_spec(w)):
            assert env_value(c, "DATABASE_URL") is None, w["metadata"]["name"]
            assert env_value(c, "DATABASE_READ_URL") is None, w["metadata"]["name"]


def the_one(objs, kind, api_version):
    found = of_kind(objs, kind)
    assert len(found) == 1, "expected one %s, found %d" % (kind, len(found))
    assert found[0]["apiVersion"] == api_version, found[0]["apiVersion"]
    return found[0]


def test_prod_postgres_cluster():
    cl = the_one(render("prod"), "Cluster", "postgresql.cnpg.io/v1")["spec"]
    assert cl["instances"] == 3
    sync = cl["postgresql"]["synchronous"]  # not the deprecated min/maxSyncReplicas
    assert sync["method"] in ("any", "first") and sync["number"] >= 1, sync
    assert sync.get("dataDurability", "required") == "required", sync
    assert "minSyncReplicas" not in cl and "maxSyncReplicas" not in cl
    assert mem_bytes(cl["storage"]["size"]) >= 10 * 2**30
    for part in ("requests", "limits"):
        assert cl["resources"][part]["cpu"] and cl["resources"][part]["memory"], part
    initdb = cl["bootstrap"]["initdb"]
    assert initdb["database"] and initdb["owner"] and initdb["secret"]["name"] == DB_SECRET
    assert (cl.get("affinity") or {}).get("enablePodAntiAffinity") is not False
    assert "monitoring" in cl


def db_urls(objs):
    """{(workload, variable): parsed URL} of every literal database URL."""
    urls = {}
    for w in workloads(objs):
        for c in containers(pod_spec(w)):
            for name in DB_URL_ENV:
                if env_value(c, name):
                    urls[(w["metadata"]["name"], name)] = urllib.parse.urlsplit(
                        env_value(c, name))
    return urls


def test_prod_database_urls_name_the_cluster_services():
    objs = render("prod")
    cluster = the_one(objs, "Cluster", "postgresql.cnpg.io/v1")
    name, db = cluster["metadata"]["name"], cluster["spec"]["bootstrap"]["initdb"]["database"]
    urls = db_urls(objs)
    writers = {w for w, v in urls if v == "DATABASE_URL"}
    assert writers == {w["metadata"]["name"] for w in workloads(objs)}, writers
    assert ("pixplane-api", "DATABASE_READ_URL") in urls
    want = {"DATABASE_URL": ("%s-rw" % name, "read-write"),
            "DATABASE_READ_URL": ("%s-ro" % name, "prefer-standby")}
    for (w, var), u in urls.items():
        host, attrs = want[var]
        q = urllib.parse.parse_qs(u.query)
        assert u.netloc.split(",")[0] == host + ":5432", (w, var, u.netloc)
        assert u.path == "/" + db and q["target_session_attrs"] == [attrs], (w, var, u)
        assert q["sslmode"] == ["verify-full"], (w, var)
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in first_container(objs, w)["env"]
                if (e.get("valueFrom") or {}).get("secretKeyRef")}
        for env, key in DB_SECRET_KEYS.items():
            assert refs.get(env) == {"name": DB_SECRET, "key": key}, (w, env, refs.get(env))


def first_container(objs, name):
    return pod_spec([w for w in workloads(objs) if w["metadata"]["name"] == name][0])["containers"][0]


def test_prod_kafka_and_topics():
    objs = render("prod")
    kafka = the_one(objs, "Kafka", "kafka.strimzi.io/v1")
    name, spec = kafka["metadata"]["name"], kafka["spec"]["kafka"]
    pools = [p for p in of_kind(objs, "KafkaNodePool")
             if p["metadata"]["labels"].get("strimzi.io/cluster") == name]
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    assert brokers == 3 and controllers >= 3, (brokers, controllers)  # KRaft, no ZooKeeper
    assert "zookeeper" not in kafka["spec"]
    cfg = spec["config"]
    assert cfg["default.replication.factor"] == 3 and cfg["min.insync.replicas"] == 2, cfg
    assert cfg["offsets.topic.replication.factor"] == 3, cfg
    assert "topicOperator" in kafka["spec"]["entityOperator"]
    _, data = config_data(objs)
    plain = [l for l in spec["listeners"] if not l["tls"]][0]
    assert data["KAFKA_BOOTSTRAP"] == "%s-kafka-bootstrap:%d" % (name, plain["port"])
    topics = {t["spec"].get("topicName", t["metadata"]["name"]): t
              for t in of_kind(objs, "KafkaTopic")}
    for var in ("PIXPLANE_UPLOAD_TOPIC", "PIXPLANE_DLQ_TOPIC", "PIXPLANE_EVENTS_TOPIC"):
        t = topics.get(data[var])
        assert t, "no KafkaTopic for %s=%s" % (var, data[var])
        assert t["metadata"]["labels"]["strimzi.io/cluster"] == name
        assert t["spec"]["replicas"] == 3 and t["spec"]["partitions"] >= 3, t["spec"]
        assert t["spec"]["config"]["min.insync.replicas"] == 2, t["spec"]


def test_one_image_everywhere(objs):
    images = {c["image"] for w in workloads(objs) for c in containers(pod_spec(w))}
    assert len(images) == 1, images


# ---------------------------------------------------------------- Dockerfile

def dockerfile_instructions():
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, cur = [], ""
    for line in open(DOCKERFILE, encoding="utf-8").read().splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if cur and s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    assert not cur, "Dockerfile ends inside a continuation"
    return out


def stages():
    res = []
    for ins, arg in dockerfile_instructions():
        if ins == "FROM":
            res.append({"from": arg, "ins": []})
        else:
            assert res or ins == "ARG", "%s before FROM" % ins
            if res:
                res[-1]["ins"].append((ins, arg))
    return res


def apt_packages(run):
    """Packages named by the `apt-get install` commands of one RUN."""
    pkgs = []
    for cmd in re.split(r"&&|;|\|\|", run):
        words = cmd.split()
        if "apt-get" in words and "install" in words:
            pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def test_dockerfile_stages():
    st = stages()
    assert len(st) >= 2, "not a multi-stage build"
    first = st[0]["from"].split()
    assert first[0] == "debian:12" and len(first) == 3 and first[1].upper() == "AS", st[0]["from"]
    assert st[-1]["from"].split()[0] == "debian:12-slim", st[-1]["from"]
    aliases = {x["from"].split()[2] for x in st if len(x["from"].split()) == 3}
    for s in st:
        image = s["from"].split()[0]
        if image in aliases:  # FROM an earlier stage
            continue
        assert ":" in image or "@sha256:" in image, "unpinned base image %s" % image
        assert not image.endswith(":latest"), image
    final = st[-1]["ins"]
    copies = [a for i, a in final if i == "COPY"]
    assert any(a.startswith("--from=") for a in copies), "the runtime stage copies nothing built"


def test_dockerfile_user_and_ports():
    final = stages()[-1]["ins"]
    users = [a for i, a in final if i == "USER"]
    assert users, "the runtime stage runs as root"
    m = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1])
    assert m and int(m.group(1)) > 0 and (m.group(2) is None or int(m.group(2)) > 0), \
        "USER must be a numeric non-root uid[:gid], got %r" % users[-1]
    later = final[[i for i, _ in final].index("USER") + 1:]
    assert not any(i == "USER" and a.split(":")[0] in ("root", "0") for i, a in later)
    exposed = " ".join(a for i, a in final if i == "EXPOSE").split()
    assert "8080" in exposed or "8080/tcp" in exposed


def test_dockerfile_hygiene():
    ins = dockerfile_instructions()
    for i, a in ins:
        if i == "ADD":
            assert not re.match(r"(--\S+\s+)*(https?|git)://", a), "remote ADD: %s" % a
            pytest.fail("use COPY, not ADD: %s" % a)
        if i == "ENV":
            assert not re.search(r"(SECRET|PASSWORD|TOKEN|ACCESS_KEY)\w*=\S", a), a
        if i != "RUN":
            continue
        assert "sudo " not in a
        assert not re.search(r"\b(curl|wget)\b.*\|\s*(ba)?sh", a), "pipe to shell: %s" % a
        if re.search(r"apt-get\s+install", a):
            assert "--no-install-recommends" in a, a
            assert re.search(r"(^|\s)(-y|--yes|--assume-yes)(\s|$)", a), "apt-get without -y: %s" % a
            assert "apt-get update" in a, "install without update in the same RUN: %s" % a
            assert "rm -rf /var/lib/apt/lists/*" in a, "apt lists not removed: %s" % a
        if "apt-get update" in a:
            assert re.search(r"apt-get\s+(-\S+\s+)*install", a), "lone apt-get update: %s" % a
        assert "apt-get upgrade" not in a and "dist-upgrade" not in a, a


def test_dockerfile_contents():
    st = stages()
    build_runs = " ".join(a for i, a in st[0]["ins"] if i == "RUN")
    for p in PROGRAMS:
        assert p in build_runs, "the build stage does not build %s" % p
    assert re.search(r"\bmake\b", build_runs)
    runtime = []
    for i, a in st[-1]["ins"]:
        if i == "RUN":
            runtime += apt_packages(a)
    assert set(runtime) == RUNTIME_PKGS, "runtime packages %s, want %s" % (
        sorted(runtime), sorted(RUNTIME_PKGS))
    assert not [p for p in runtime if p.endswith("-dev")]
    final = " ".join("%s %s" % x for x in st[-1]["ins"])
    assert "/usr/local/bin" in final
    assert not any(i == "COPY" and not a.startswith("--from=") for i, a in st[-1]["ins"]), \
        "the runtime stage copies from the build context"


def needed_packages(binaries):
    """Debian packages shipping the shared libraries the binaries load (NEEDED)."""
    libs = set()
    for b in binaries:
        out = subprocess.run(["objdump", "-p", b], capture_output=True, text=True, check=True)
        libs |= set(re.findall(r"^\s*NEEDED\s+(\S+)", out.stdout, re.M))
    r = subprocess.run(["dpkg", "-S"] + ["*/" + l for l in sorted(libs)], capture_output=True,
                       text=True, timeout=120)
    found = {}
    for line in r.stdout.splitlines():
        pkg, _, path = line.partition(": ")
        for p in pkg.split(", "):
            found.setdefault(os.path.basename(path.strip()), set()).add(p.split(":")[0])
    missing = sorted(libs - set(found))
    assert not missing, "no Debian package ships %s" % missing
    return {sorted(found[l])[0] for l in libs}


def test_runtime_packages_cover_the_binaries():
    """Every shared library the built programs load comes from a runtime package or one of
    their dependencies, so the slim image can run them."""
    bins = [os.path.join(BUILD, p) for p in PROGRAMS if os.path.isfile(os.path.join(BUILD, p))]
    if not bins or not shutil.which("objdump") or not shutil.which("apt-cache"):
        pytest.skip("needs the built programs in %s, objdump and apt-cache" % BUILD)
    need = needed_packages(bins)
    r = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
                        "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
                        "--no-pre-depends"] + sorted(RUNTIME_PKGS),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not r.stdout.strip():
        pytest.skip("apt-cache has no package lists: %s" % r.stderr.strip()[:200])
    closure = set(RUNTIME_PKGS)
    closure |= {l.strip() for l in r.stdout.splitlines() if l and not l.startswith(" ")}
    closure |= set(re.findall(r"Depends: <?([^\s>]+)", r.stdout))
    closure |= {"libc6", "libgcc-s1"}  # in every Debian image
    closure = {p.split(":")[0] for p in closure}
    # the test build is sanitized; the image's release build links no sanitizer runtime
    closure |= {"libasan8", "libubsan1"}
    missing = sorted(p.split(":")[0] for p in need if p.split(":")[0] not in closure)
    assert not missing, "runtime image lacks packages for %s" % missing


def test_dockerfile_linter():
    """hadolint is not packaged for Debian 12 and npm's `hadolint` only downloads a release
    binary; dockerfilelint (npm, pure JavaScript) is used when installed."""
    lint = os.environ.get("DOCKERFILELINT") or shutil.which("dockerfilelint")
    if not lint:
        pytest.skip("dockerfilelint not installed (npm install -g dockerfilelint); "
                    "the property tests above are the Dockerfile check")
    r = subprocess.run([lint, "-j", DOCKERFILE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "dockerfilelint: %s%s" % (r.stdout, r.stderr)
