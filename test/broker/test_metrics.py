"""Prometheus metrics (/metrics, text format 0.0.4) and /healthz on a WebSockets listener with
`http_metrics true` (broker/metrics.c, docs/metrics.md).

Every scrape is a plain HTTP GET over a real socket to a real midge. Its text is checked by
Debian's `promtool check metrics` and parsed by python3-prometheus-client's parser, the two
consumers an operator would point at it. Values are compared before and after traffic the test
sends, after a sync point (a PUBACK, the subscriber holding every message); the gauges that
midge recounts once a second (queued, in flight) are polled until they match, with a deadline.
"""

import socket
import subprocess
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import mqtt_raw as m
from conftest import IS_MIDGE, Broker, free_port

pytestmark = pytest.mark.skipif(not IS_MIDGE, reason="midge's own metrics")

MAX_QUEUED = 5
CTYPE = "text/plain; version=0.0.4; charset=utf-8"


@pytest.fixture(scope="module")
def mb(tmp_path_factory):
    """TCP listener, a WebSockets listener with http_metrics, one without; two workers."""
    tmp = tmp_path_factory.mktemp("metrics")
    mport, nport = free_port(), free_port()
    extra = ["max_queued_messages %d" % MAX_QUEUED,
             "listener %d 127.0.0.1" % mport, "protocol websockets", "http_metrics true",
             "listener %d 127.0.0.1" % nport, "protocol websockets"]
    b = Broker(tmp, threads=2, extra=extra, name="metrics")
    b.mport, b.nport = mport, nport
    yield b
    b.stop()


def http_get(port, path, method="GET"):
    """(status, headers dict with lower-case names, body bytes); the broker closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % (method, path)).encode())
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def scrape(b):
    """{(name, frozenset(labels)): value} from one /metrics, after checking the answer."""
    status, hdrs, body = http_get(b.mport, "/metrics")
    assert status == 200
    assert hdrs["content-type"] == CTYPE
    assert int(hdrs["content-length"]) == len(body)
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def v(snap, name, **labels):
    return snap[(name, frozenset((k, str(x)) for k, x in labels.items()))]


def poll(b, pred, timeout=15.0):
    """Scrape until pred(snapshot) holds (gauges are recounted once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        s = scrape(b)
        if pred(s):
            return s
        assert time.monotonic() < deadline, "metrics never matched"
        time.sleep(0.1)


def test_metrics_pass_promtool_and_prometheus_client(mb):
    status, hdrs, body = http_get(mb.mport, "/metrics")
    assert status == 200 and hdrs["content-type"] == CTYPE
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout + r.stderr == b"", r.stdout + r.stderr  # no lint complaints either
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    # prometheus_client strips _total from counter family names
    want = {"midge_build_info": "gauge", "midge_connects": "counter", "midge_disconnects": "counter",
            "midge_listener_connections": "gauge", "midge_clients_connected": "gauge",
            "midge_messages_received": "counter", "midge_messages_received_bytes": "counter",
            "midge_messages_sent": "counter", "midge_messages_sent_bytes": "counter",
            "midge_deliveries_dropped": "counter", "midge_subscriptions": "gauge",
            "midge_retained_messages": "gauge", "midge_queued_messages": "gauge",
            "midge_queued_bytes": "gauge", "midge_inflight_messages": "gauge",
            "midge_worker_busy_seconds": "counter", "process_cpu_seconds": "counter",
            "process_resident_memory_bytes": "gauge", "process_open_fds": "gauge"}
    for name, typ in want.items():
        assert name in fams, name
        assert fams[name].type == typ, name
    s = scrape(mb)
    ver = [k for k in s if k[0] == "midge_build_info"]
    assert len(ver) == 1 and dict(ver[0][1])["version"] and s[ver[0]] == 1
    assert {dict(k[1])["worker"] for k in s if k[0] == "midge_worker_busy_seconds_total"} == {"0", "1"}
    assert {dict(k[1])["cause"] for k in s if k[0] == "midge_deliveries_dropped_total"} >= {
        "queue_full", "expired", "denied"}
    assert v(s, "process_resident_memory_bytes") > 1 << 20
    assert v(s, "process_open_fds") >= 5
    assert v(s, "process_cpu_seconds_total") >= 0


def test_counters_rise_by_exactly_the_traffic_sent(mb):
    N, SIZE = 25, 137
    a = scrape(mb)
    sub = m.RawClient(mb.port)
    sub.connect("met-sub")
    sub.subscribe([("met/t", 1)])
    pub = m.RawClient(mb.port)
    pub.connect("met-pub")
    v5 = m.RawClient(mb.port, version=5)
    v5.connect("met-v5")
    for i in range(N):
        pub.publish("met/t", bytes([i]) * SIZE, qos=1, pid=i + 1)  # waits for each PUBACK
    got = sub.collect(N)
    assert [p.payload for p in got] == [bytes([i]) * SIZE for i in range(N)]
    b = scrape(mb)

    def d(name, **lb):
        return v(b, name, **lb) - v(a, name, **lb)
    assert d("midge_connects_total") == 3
    assert d("midge_clients_connected", protocol_version="3.1.1") == 2
    assert d("midge_clients_connected", protocol_version="5.0") == 1
    assert d("midge_messages_received_total", qos=1) == N
    assert d("midge_messages_received_bytes_total", qos=1) == N * SIZE
    assert d("midge_messages_received_total", qos=0) == 0
    assert d("midge_messages_sent_total", qos=1) == N
    assert d("midge_messages_sent_bytes_total", qos=1) == N * SIZE
    assert d("midge_subscriptions") == 1
    assert d("midge_listener_connections", listener=0, port=mb.port, protocol="mqtt") == 3
    assert d("midge_sockets_accepted_total") == 4  # three clients and this scrape
    # the scrapes themselves are WebSockets-listener sockets: one open now (this one)
    assert v(b, "midge_listener_connections", listener=1, port=mb.mport, protocol="websockets") == 1
    assert d("midge_network_received_bytes_total") > N * SIZE
    sub.disconnect()
    pub.disconnect()
    v5.disconnect()
    c = poll(mb, lambda s: v(s, "midge_disconnects_total") - v(a, "midge_disconnects_total") == 3)
    for lv in ("3.1.1", "5.0"):
        assert v(c, "midge_clients_connected", protocol_version=lv) == v(
            a, "midge_clients_connected", protocol_version=lv)
    assert v(c, "midge_subscriptions") == v(a, "midge_subscriptions")  # clean session: gone


def test_queued_inflight_and_drops(mb):
    SIZE = 50
    a = scrape(mb)
    sub = m.RawClient(mb.port)
    sub.connect("met-q", clean=False)
    sub.subscribe([("met/q", 1)])
    sub.disconnect()
    pub = m.RawClient(mb.port)
    pub.connect("met-qp")
    for i in range(MAX_QUEUED + 3):  # three beyond max_queued_messages are dropped
        pub.publish("met/q", b"q" * SIZE, qos=1, pid=i + 1)
    pub.publish("met/q", b"zero", qos=0)  # QoS 0 for an offline session: not queued
    pub.publish("$SYS/met", b"x", qos=1, pid=99)  # refused (clients may not publish $SYS)
    pub.publish("met/sync", b"", qos=1, pid=100)  # everything before it has been read
    b = poll(mb, lambda s: v(s, "midge_queued_messages") == MAX_QUEUED
             and v(s, "midge_deliveries_dropped_total", cause="queue_full")
             - v(a, "midge_deliveries_dropped_total", cause="queue_full") == 3
             and v(s, "midge_deliveries_dropped_total", cause="offline_qos0")
             - v(a, "midge_deliveries_dropped_total", cause="offline_qos0") == 1)
    assert v(b, "midge_queued_bytes") == MAX_QUEUED * SIZE
    assert v(b, "midge_messages_denied_total") - v(a, "midge_messages_denied_total") == 1
    for cause in ("expired", "denied", "too_large"):
        assert v(b, "midge_deliveries_dropped_total", cause=cause) == v(
            a, "midge_deliveries_dropped_total", cause=cause)
    # back online and not acknowledging: the queue moves in flight
    sub = m.RawClient(mb.port)
    sub.connect("met-q", clean=False)
    got = [sub.recv_publish(ack=False) for _ in range(MAX_QUEUED)]
    c = poll(mb, lambda s: v(s, "midge_inflight_messages") == MAX_QUEUED
             and v(s, "midge_queued_messages") == 0)
    assert v(c, "midge_inflight_bytes") == MAX_QUEUED * SIZE
    for p in got:
        sub.send(m.puback(p.pid))
    poll(mb, lambda s: v(s, "midge_inflight_messages") == 0)
    sub.disconnect()
    pub.disconnect()


def test_expired_in_the_queue_is_counted(mb):
    """A QoS 1 message with a 1 s expiry, queued for an offline 5.0 session, has expired when
    the session comes back: dropped with cause "expired", never sent."""
    a = scrape(mb)
    sub = m.RawClient(mb.port, version=5)
    sub.connect("met-exp", clean=False, properties=[(m.P_SESSION_EXPIRY, 60)])
    sub.subscribe([("met/exp", 1)])
    sub.disconnect()
    pub = m.RawClient(mb.port, version=5)
    pub.connect("met-expp")
    pub.publish("met/exp", b"old", qos=1, properties=[(m.P_MESSAGE_EXPIRY, 1)])
    poll(mb, lambda s: v(s, "midge_queued_messages") == 1)
    time.sleep(1.2)  # the expiry itself: the message must be older than its 1 s
    sub = m.RawClient(mb.port, version=5)
    sub.connect("met-exp", clean=False, properties=[(m.P_SESSION_EXPIRY, 0)])
    sub.send(m.pingreq())
    assert sub.recv().type == m.PINGRESP  # the queue was pumped before this answer
    b = scrape(mb)
    assert v(b, "midge_deliveries_dropped_total", cause="expired") - v(
        a, "midge_deliveries_dropped_total", cause="expired") == 1
    assert v(b, "midge_messages_sent_total", qos=1) == v(a, "midge_messages_sent_total", qos=1)
    sub.disconnect()
    pub.disconnect()


def test_healthz_and_unknown_paths(mb):
    status, hdrs, body = http_get(mb.mport, "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert hdrs["content-type"].startswith("text/plain")
    assert http_get(mb.mport, "/metrics?x=1")[0] == 200  # a query string is ignored
    assert http_get(mb.mport, "/nope")[0] == 404
    assert http_get(mb.mport, "/metricsx")[0] == 404
    # a WebSockets listener without http_metrics does not answer either
    assert http_get(mb.nport, "/metrics")[0] == 404
    assert http_get(mb.nport, "/healthz")[0] == 404
    status, hdrs, body = http_get(mb.mport, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(hdrs["content-length"]) > 1000


@pytest.mark.threaded
def test_scrapes_during_load_do_not_disturb_delivery(tmp_path):
    """A publisher sends QoS 1 messages while another thread scrapes as fast as it can: the
    subscriber (on the other worker, likely) gets every one in order, and every counter only
    rises from one scrape to the next. A broker of its own: no max_queued_messages."""
    N = 400
    mport = free_port()
    mb = Broker(tmp_path, threads=2, name="load",
                extra=["listener %d 127.0.0.1" % mport, "protocol websockets", "http_metrics true"])
    mb.mport = mport
    sub = m.RawClient(mb.port, timeout=20)
    sub.connect("met-load-sub")
    sub.subscribe([("met/load", 1)])
    pub = m.RawClient(mb.port, timeout=20)
    pub.connect("met-load-pub")
    stop = threading.Event()
    snaps, errors = [], []

    def scraper():
        try:
            while not stop.is_set() and len(snaps) < 200:
                snaps.append(scrape(mb))
        except Exception as e:  # reported below
            errors.append(repr(e))

    t = threading.Thread(target=scraper)
    t.start()
    try:
        for i in range(N):
            pub.send(m.publish("met/load", b"%d" % i, qos=1, pid=i % 60000 + 1))
        got = sub.collect(N, timeout=60)
    finally:
        stop.set()
        t.join(30)
    assert not errors, errors
    assert [int(p.payload) for p in got] == list(range(N))
    assert len(snaps) >= 2
    for x, y in zip(snaps, snaps[1:]):
        for k, val in x.items():
            if k[0].endswith("_total") and k in y:
                assert y[k] >= val, k
    assert v(snaps[-1], "midge_messages_received_total", qos=1) <= N
    sub.disconnect()
    pub.disconnect()
    mb.stop()
