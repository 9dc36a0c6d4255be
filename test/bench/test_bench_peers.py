"""bench/compare's peers: Debian's nats-server (its MQTT) started with bench/compare's own
configuration, and midge_bench's connections against it (client ids, clean sessions, QoS 1
through JetStream); the rows nats cannot run are n/a without starting anything.

Counts, never speed (see test_bench_smoke.py).
"""

import importlib.machinery
import importlib.util
import os
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_bench_smoke as smoke  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPARE = os.path.join(ROOT, "bench", "compare")


def load_compare():
    """bench/compare as a module (it is a script without .py)."""
    loader = importlib.machinery.SourceFileLoader("bench_compare", COMPARE)
    spec = importlib.util.spec_from_loader("bench_compare", loader)
    m = importlib.util.module_from_spec(spec)
    loader.exec_module(m)
    return m


compare = load_compare()


def wait_listening(proc, port, logpath):
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, "exited: " + open(logpath).read()[-2000:]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "not listening: " + open(logpath).read()[-2000:]
            time.sleep(0.05)


@pytest.fixture(scope="module")
def nats(tmp_path_factory):
    """(port, pid) of one nats-server for the module, configured by bench/compare."""
    if not os.access(compare.NATS, os.X_OK):
        pytest.fail("nats-server not found at %s (scripts/install-deps installs it)"
                    % compare.NATS)
    tmp = str(tmp_path_factory.mktemp("nats"))
    port = smoke.conftest.free_port()
    conf = os.path.join(tmp, "nats.conf")
    with open(conf, "w") as f:
        f.write("\n".join(compare.nats_conf(port, tmp, None,
                                            client_port=smoke.conftest.free_port())) + "\n")
    logpath = os.path.join(tmp, "nats.log")
    logf = open(logpath, "wb")
    p = subprocess.Popen([compare.NATS, "-c", conf], stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    try:
        wait_listening(p, port, logpath)
        yield port, p.pid
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        logf.close()


@pytest.mark.parametrize("qos", [0, 1])
def test_pairs_against_nats(nats, qos):
    """Each connection its own client id with a clean session; at QoS 1 every PUBLISH is
    PUBACKed (nats stores it in JetStream first) and delivered once, in order."""
    port, pid = nats
    r = smoke.bench(port, pid, "pairs", "-c", "3", "-q", str(qos))
    smoke.check_counts(r)
    smoke.check_exact(r)
    if qos:
        assert r["acks"] == r["sent"]


def test_fanin_against_nats(nats):
    """The fan-in row's wildcard subscription (`.../in/+`) on nats."""
    port, pid = nats
    r = smoke.bench(port, pid, "fanin", "-c", "5", "-q", "0")
    smoke.check_counts(r)
    smoke.check_exact(r)


def test_persistent_sessions_against_nats(nats):
    """pairs10-q1-persist's --no-clean sessions (nats keeps one per client id in JetStream)."""
    port, pid = nats
    r = smoke.bench(port, pid, "pairs", "-c", "2", "-q", "1", "--no-clean")
    smoke.check_counts(r)
    smoke.check_exact(r)


def test_rows_nats_cannot_run_are_na():
    """QoS 2, acl_file and WebSockets rows: n/a with the reason, and no broker started (so
    this runs in a second and needs no binary but midge_bench's path)."""
    p = subprocess.run([COMPARE, "--brokers", "nats", "--rows",
                        "pairs10-q2,pairs10-q0-acl1k,ws-pairs10-q0", "--runs", "1",
                        "--bench", "/bin/true"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    lines = [x for x in out.splitlines() if x.startswith("| pairs10-q2 ")]
    assert len(lines) == 1 and lines[0].split(" | ")[1] == "n/a", out
    assert "n/a: nats on pairs10-q2: nats-server 2.9's MQTT has no QoS 2" in out
    assert "n/a: nats on pairs10-q0-acl1k: " in out
    assert "n/a: nats on ws-pairs10-q0: " in out


# ---- the ceiling: bench/trivial_router.c (not a broker) ----

ROUTER = os.path.join(smoke.conftest.MIDGE_BUILD, "bench", "trivial_router")


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    """(port, pid) of one trivial router for the module."""
    if not os.access(ROUTER, os.X_OK):
        pytest.fail("trivial_router not found at %s (make)" % ROUTER)
    tmp = str(tmp_path_factory.mktemp("router"))
    port = smoke.conftest.free_port()
    logpath = os.path.join(tmp, "router.log")
    logf = open(logpath, "wb")
    p = subprocess.Popen([ROUTER, "-p", str(port)], stdout=logf, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=smoke.ENV)
    try:
        wait_listening(p, port, logpath)
        yield port, p.pid
    finally:
        p.terminate()
        p.wait(timeout=10)
        logf.close()
        log = open(logpath).read()
        for pat in smoke.conftest.SANITIZER_PATTERNS:
            assert pat not in log, log[-6000:]


def test_router_forwards_by_topic_byte_for_byte(router):
    """CONNACK and SUBACK are the fixed 3.1.1 bytes; a PUBLISH reaches the exact and the
    wildcard subscriber as sent, retain flag cleared; a topic nobody subscribed to reaches
    nobody (the publisher's next message, which does arrive, is the sync point)."""
    from mqtt_raw import RawClient, connect, publish, subscribe, pingreq
    port, _ = router
    sub, pub = RawClient(port), RawClient(port)
    try:
        for c in (sub, pub):
            c.send(connect("ignored"))
            assert c.recv_raw() == bytes([0x20, 0x02, 0x00, 0x00])
        sub.send(subscribe(0x1234, ["bench/p/1", ("bench/in/+", 1)]))
        assert sub.recv_raw() == bytes([0x90, 0x04, 0x12, 0x34, 0x00, 0x00])
        pub.send(pingreq())
        assert pub.recv_raw() == bytes([0xD0, 0x00])
        pub.send(publish("bench/p/2", b"nobody") + publish("bench/p/1", b"x" * 200, retain=True)
                 + publish("bench/in/7", b"fan-in"))
        assert sub.recv_raw() == publish("bench/p/1", b"x" * 200)
        assert sub.recv_raw() == publish("bench/in/7", b"fan-in")
        sub.expect_nothing(0.2)
    finally:
        sub.close()
        pub.close()


def test_router_refuses_what_it_cannot_do(router):
    """QoS 1 closes the connection; MQTT 5 gets CONNACK 0x01 and a close; nothing before
    CONNECT."""
    from mqtt_raw import RawClient, connect, publish
    port, _ = router
    c = RawClient(port)
    c.send(connect("a"))
    c.recv_raw()
    c.send(publish("t", b"q1", qos=1, pid=1))
    c.expect_closed()
    c.close()
    c = RawClient(port)
    c.send(connect("b", version=5))
    assert c.recv_raw() == bytes([0x20, 0x02, 0x00, 0x01])
    c.expect_closed()
    c.close()
    c = RawClient(port)
    c.send(publish("t", b"before connect"))
    c.expect_closed()
    c.close()


@pytest.mark.parametrize("scenario", ["pairs", "fanin", "fanout"])
def test_router_under_midge_bench(router, scenario):
    """The rows bench/compare runs it on: every message delivered once, in order."""
    port, pid = router
    fan = 4 if scenario == "fanout" else 1
    r = smoke.bench(port, pid, scenario, "-c", str(4 if scenario == "fanout" else 5), "-q", "0")
    smoke.check_counts(r, fan=fan)
    smoke.check_exact(r)
