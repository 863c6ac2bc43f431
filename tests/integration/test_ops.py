# Operating the API: /metrics in strict Prometheus text format with counters that move,
# request ids honoured, graceful SIGTERM with in-flight requests, and riding out a
# PostgreSQL outage without a restart.
import concurrent.futures as cf
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import requests

from conftest import ROOT, ApiProcess, Client, free_port, user_id

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[^"{}]|"(?:[^"\\\n]|\\.)*")*)\})?'
                    r' (-?[0-9.eE+-]+|\+Inf|NaN)$')
LABEL = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"$')


def parse_prometheus(text):
    """A strict parser of the text exposition format: every sample belongs to a family
    declared by # TYPE before it, labels are well formed, histograms are consistent."""
    types, samples = {}, []
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, "family declared twice: " + name
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, "bad sample line: %r" % line
        name, labels = m.group(1), {}
        if m.group(3):
            for part in re.findall(r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"', m.group(3)):
                assert LABEL.match(part)
                k, _, v = part.partition("=")
                labels[k] = v[1:-1]
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        family = name if name in types else base
        assert family in types, "sample before its TYPE: " + name
        if types[family] == "histogram" and name.endswith("_bucket"):
            assert "le" in labels
        samples.append((name, labels, float(m.group(4))))
    for fam, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for name, labels, v in samples:
            if name == fam + "_bucket":
                key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                series.setdefault(key, []).append((labels["le"], v))
        for key, buckets in series.items():
            values = [v for _, v in buckets]
            assert values == sorted(values), "buckets not cumulative"
            assert buckets[-1][0] == "+Inf"
            count = [v for n, l, v in samples if n == fam + "_count"
                     and tuple(sorted(l.items())) == key]
            assert count == [buckets[-1][1]]
    return types, samples


def value(samples, name, **labels):
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == x
                                                              for k, x in labels.items()))


def test_metrics_format_and_movement(api):
    c = Client(api.url, api.token(user_id("metrics")))
    types, before = parse_prometheus(requests.get(api.ops_url + "/metrics", timeout=10).text)
    for fam in ("pixplane_http_requests_total", "pixplane_http_request_duration_seconds",
                "pixplane_upload_bytes_total", "pixplane_dedup_hits_total",
                "pixplane_outbox_backlog", "pixplane_db_errors_total", "pixplane_s3_errors_total"):
        assert fam in types, fam
    data = os.urandom(5000)
    c.upload(data)
    c.upload(data)
    for _ in range(3):
        c.call("GET", "/images")
    _, after = parse_prometheus(requests.get(api.ops_url + "/metrics", timeout=10).text)
    route = {"route": "/images", "method": "GET", "status": "200"}
    assert value(after, "pixplane_http_requests_total", **route) - \
        value(before, "pixplane_http_requests_total", **route) == 3
    assert value(after, "pixplane_upload_bytes_total") - \
        value(before, "pixplane_upload_bytes_total") == 10000
    assert value(after, "pixplane_dedup_hits_total") - value(before, "pixplane_dedup_hits_total") == 1
    assert value(after, "pixplane_http_request_duration_seconds_count", route="/uploads") > 0
    assert value(after, "pixplane_outbox_backlog") >= 0  # the worker's relay drains it


def test_metrics_need_credentials_on_the_public_port(api):
    # operational counters (dedup hits among them) are not for users to watch
    r = requests.get(api.url + "/metrics", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"], r.text
    user = Client(api.url, api.token(user_id("nosy")))
    st, doc = user.call("GET", "/metrics")
    assert st == 403, doc
    admin = requests.get(api.url + "/metrics", timeout=10,
                         headers={"Authorization": "Bearer " + api.token("ops", admin=True)})
    assert admin.status_code == 200 and "pixplane_http_requests_total" in admin.text
    # the operations listener: for Prometheus and probes, off the public network
    ops = requests.get(api.ops_url + "/metrics", timeout=10)
    assert ops.status_code == 200 and "pixplane_dedup_hits_total" in ops.text
    assert requests.get(api.ops_url + "/healthz", timeout=10).status_code == 200
    assert requests.get(api.ops_url + "/readyz", timeout=10).status_code == 200
    assert requests.get(api.ops_url + "/images", timeout=10).status_code == 404


def test_request_id_and_no_secrets_in_logs(stack):
    api = ApiProcess()
    try:
        tok = api.token(user_id("rid"))
        r = requests.get(api.url + "/images", headers={"Authorization": "Bearer " + tok,
                                                       "X-Request-Id": "trace-abc.123"},
                         timeout=10)
        assert r.headers["X-Request-Id"] == "trace-abc.123"
        r = requests.get(api.url + "/images", headers={"Authorization": "Bearer " + tok},
                         timeout=10)
        assert re.match(r"^[A-Za-z0-9._-]{8,64}$", r.headers["X-Request-Id"])
        c = Client(api.url, tok)
        _, doc = c.upload(os.urandom(100))
        c.call("GET", "/images/%s" % doc["image_id"])
        requests.get(api.url + "/sync/stream?token=" + tok, timeout=2, stream=True).close()
        ticket = c.call("POST", "/sync/stream-ticket")[1]["ticket"]
        requests.get(api.url + "/sync/stream?ticket=" + ticket, timeout=2, stream=True).close()
    finally:
        api.stop()
    log = open(api.log_path).read()
    assert '"request_id":"trace-abc.123"' in log
    assert tok not in log and tok.split(".")[2] not in log
    assert ticket not in log
    assert "X-Amz-Signature" not in log and os.environ["S3_SECRET_KEY"] not in log
    assert os.environ["PIXPLANE_JWT_SECRET"] not in log


def test_sigterm_drains_inflight_requests(stack):
    api = ApiProcess({"PIXPLANE_WORKERS": "8"})
    c = Client(api.url, api.token(user_id("drain")))
    sessions = []
    for _ in range(50):
        data = os.urandom(2 * 1024 * 1024)
        s = c.start(data)
        c.put_chunks(s, data, [0])
        sessions.append(s["upload_session_id"])
    results = []

    def complete(sid):
        cl = Client(api.url, c.s.headers["Authorization"][7:])
        return cl.complete(sid)

    with cf.ThreadPoolExecutor(50) as ex:
        futs = [ex.submit(complete, sid) for sid in sessions]
        time.sleep(0.3)  # requests are queued and running
        t0 = time.monotonic()
        api.proc.send_signal(signal.SIGTERM)
        results = [f.result(timeout=60) for f in futs]
    rc = api.proc.wait(30)
    took = time.monotonic() - t0
    api.log.close()
    assert rc == 0, rc
    assert took < 20, took
    assert [st for st, _ in results] == [200] * 50, [st for st, _ in results]
    assert len({d["image_id"] for _, d in results}) == 50


def test_postgres_outage_503_then_recovery(stack):
    d = tempfile.mkdtemp(prefix="pixplane-outage-")
    shutil.rmtree(d)
    port = free_port()
    pg = os.path.join(ROOT, "minio-dev", "pg")
    subprocess.run([pg, "start", d, str(port)], check=True, timeout=60, stdout=subprocess.DEVNULL)
    url = "postgresql://pixplane@127.0.0.1:%d/pixplane" % port
    subprocess.run([os.path.join(os.path.dirname(ApiProcess.__init__.__code__.co_filename),
                                 "..", "..", os.environ.get("PIXPLANE_BUILD", "build"),
                                 "pixplane-api"), "migrate"],
                   env=dict(os.environ, DATABASE_URL=url), check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    api = ApiProcess({"DATABASE_URL": url})
    statuses, stop = [], threading.Event()
    tok = api.token(user_id("outage"))

    def load():
        while not stop.is_set() and len(statuses) < 2000:
            try:
                r = requests.get(api.url + "/images", timeout=10,
                                 headers={"Authorization": "Bearer " + tok})
                statuses.append((time.monotonic(), r.status_code))
            except requests.RequestException:
                statuses.append((time.monotonic(), -1))
            time.sleep(0.1)

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(1)
        stopping_at = time.monotonic()
        subprocess.run([pg, "stop", d], check=True, timeout=60, stdout=subprocess.DEVNULL)
        down_at = time.monotonic()
        time.sleep(10)
        starting_at = time.monotonic()
        subprocess.run([pg, "start", d, str(port)], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        up_at = time.monotonic()
        time.sleep(4)
    finally:
        stop.set()
        t.join(30)
        api.stop()
        subprocess.run([pg, "stop", d], timeout=60, stdout=subprocess.DEVNULL)
    before = [s for ts, s in statuses if ts < stopping_at]
    during = [s for ts, s in statuses if down_at + 1 < ts < starting_at]
    after = [s for ts, s in statuses if ts > up_at + 2]
    assert before and set(before) == {200}, before
    assert during and set(during) == {503}, set(during)
    assert after and set(after) == {200}, after
