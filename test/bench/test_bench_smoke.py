"""midge_bench smoke test: a few seconds of each scenario against a real broker, checking
message counts (nothing lost or duplicated at QoS 1/2; QoS 0 counts add up), never speed.

The broker is midge ($MIDGE_BUILD/bin/midge, through the shared `broker` fixture, so its
exit status and sanitizer output are checked too; a midge that is not built fails the test),
or Debian's mosquitto when MIDGE_TEST_BROKER=mosquitto. midge_bench is
$MIDGE_BUILD/bin/midge_bench.
"""

import importlib.util
import json
import os
import socket
import subprocess
import time

import pytest

from tlscerts import tls_certs  # noqa: F401  (the session-scoped fixture)

# test/conftest.py by path: several directories have a conftest.py, so the bare module name
# "conftest" may be another one's
_spec = importlib.util.spec_from_file_location(
    "midge_root_conftest",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conftest.py"))
conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conftest)

BENCH = os.path.join(conftest.MIDGE_BUILD, "bin", "midge_bench")
ENV = dict(os.environ)
ENV.setdefault("ASAN_OPTIONS", "detect_leaks=1")
ENV.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
ENV.setdefault("TSAN_OPTIONS", "second_deadlock_stack=1")
USE_MIDGE = conftest.IS_MIDGE
LIMITS = ["max_queued_messages 100000", "max_inflight_messages 1000"]
# mosquitto 2.0.11 with an outgoing in-flight limit drops QoS 1 messages in a fan-in (its own
# $SYS/broker/publish/messages/dropped counts exactly what midge_bench reports lost), so
# against mosquitto, which is only the stand-in here, the limit is lifted
MOSQUITTO_LIMITS = ["max_queued_messages 100000", "max_inflight_messages 0"]


@pytest.fixture
def target(tmp_path, request, threads):
    """(port, pid) of a broker for this test: midge via the shared fixture (which fails when
    midge is not built), mosquitto only when MIDGE_TEST_BROKER=mosquitto."""
    if USE_MIDGE:
        b = request.getfixturevalue("broker_factory")(extra=LIMITS)
        return b.port, b.pid
    port = conftest.free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\n%s\n"
                    % (port, "\n".join(MOSQUITTO_LIMITS)))
    logf = open(str(tmp_path / "mosquitto.log"), "wb")
    p = subprocess.Popen([conftest.MOSQUITTO_BIN, "-c", str(conf)], stdout=logf,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop():
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        logf.close()
    request.addfinalizer(stop)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert p.poll() is None and time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)
    return port, p.pid


def bench(port, pid, *args, timeout=60):
    if not os.access(BENCH, os.X_OK):
        pytest.fail("midge_bench not found at %s (set MIDGE_BUILD or build it)" % BENCH)
    argv = [BENCH] + list(args) + ["-p", str(port), "--broker-pid", str(pid), "--json",
                                   "-d", "1.5", "-w", "0.3", "--drain", "5"]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=ENV)
    err = p.stderr.decode("utf-8", "replace")
    for pat in conftest.SANITIZER_PATTERNS:
        assert pat not in err, "sanitizer report from midge_bench:\n" + err[-6000:]
    lines = p.stdout.decode().strip().splitlines()
    assert lines, "no output from midge_bench (exit %d):\n%s" % (p.returncode, err)
    r = json.loads(lines[-1])
    r["exit"] = p.returncode
    r["stderr"] = err
    return r


def check_counts(r, fan=1):
    """What every run must satisfy, whatever the QoS."""
    assert r["exit"] in (0, 1), r["stderr"]
    assert r["failed"] == 0 and r["closed"] == 0, r["stderr"]
    assert r["protocol_errors"] == 0 and r["foreign"] == 0 and r["rejected"] == 0
    assert r["sent"] > 0, "nothing was published"
    # every delivery is one expected delivery, counted once: expected = delivered + lost
    assert r["expected"] == r["sent"] * fan
    assert r["delivered"] + r["lost"] == r["expected"]
    assert r["duplicated"] == 0
    assert r["latency_samples"] > 0
    lat = r["latency_us"]
    assert 0 <= lat["min"] <= lat["p50"] <= lat["p99"] <= lat["max"]


def check_exact(r):
    """QoS 1 and 2 (and QoS 0 below the queue limits): every message delivered once, all
    acknowledged, in order."""
    assert (r["lost"], r["unacked_at_end"], r["out_of_order"]) == (0, 0, 0), \
        json.dumps(r, indent=1)
    assert r["exit"] == 0, r["stderr"]


@pytest.mark.single_thread
@pytest.mark.parametrize("qos,proto", [(0, 4), (1, 4), (2, 4), (1, 5), (2, 5)])
def test_pairs(target, qos, proto):
    port, pid = target
    r = bench(port, pid, "pairs", "-c", "3", "-q", str(qos), "-V", str(proto))
    check_counts(r)
    # a window of 256 per pair stays far below the queue limit: nothing may be dropped
    check_exact(r)
    if qos:
        # every PUBLISH acknowledged exactly once (PUBACK or PUBCOMP)
        assert r["acks"] == r["sent"]


@pytest.mark.single_thread
@pytest.mark.parametrize("qos", [0, 2])
def test_fanout(target, qos):
    port, pid = target
    r = bench(port, pid, "fanout", "-c", "4", "-q", str(qos), "--window", "64")
    check_counts(r, fan=4)
    check_exact(r)


@pytest.mark.single_thread
@pytest.mark.parametrize("qos", [0, 1])
def test_fanin(target, qos):
    port, pid = target
    r = bench(port, pid, "fanin", "-c", "5", "-q", str(qos), "-V", "5")
    check_counts(r)
    check_exact(r)


@pytest.mark.single_thread
def test_shared_group_gets_each_message_once(target):
    port, pid = target
    r = bench(port, pid, "shared", "-c", "3", "-S", "2", "-q", "1", "-V", "5")
    check_counts(r)
    check_exact(r)


@pytest.mark.single_thread
def test_open_loop_large_payload(target):
    """Paced publishing of 100 KiB payloads: the pacing never runs ahead of the offered rate,
    and all arrive. (Whether it keeps up is a throughput question for bench/, not make test:
    a busy machine running ASan may fall behind.)"""
    port, pid = target
    r = bench(port, pid, "pairs", "-c", "2", "-q", "1", "-s", "102400", "--rate", "400")
    check_counts(r)
    check_exact(r)
    # 400 msgs/s for 1.8 s in all (warm-up included): the pacing may not run ahead
    assert 0 < r["sent"] <= 400 * 1.8 + 2


@pytest.mark.single_thread
def test_large_payload_qos2(target):
    """4 MB payloads at QoS 2: each goes out in many writes while PUBRECs come back, and
    each PUBREL must go after the PUBLISH it interrupts, never inside it."""
    port, pid = target
    r = bench(port, pid, "pairs", "-c", "2", "-q", "2", "-s", "4000000", "--window", "4")
    check_counts(r)
    check_exact(r)
    assert r["acks"] == r["sent"]


@pytest.mark.single_thread
def test_conn_holds_connections(target):
    port, pid = target
    r = bench(port, pid, "conn", "-c", "200", "--src-ips", "3")
    assert r["exit"] == 0, r["stderr"]
    assert r["connected"] == 200 and r["failed"] == 0


@pytest.mark.threaded
def test_pairs_qos1_threads(target, threads):
    """Several generator threads (and broker threads, for midge) at once."""
    port, pid = target
    r = bench(port, pid, "pairs", "-c", "8", "-q", "1", "--threads", "3")
    check_counts(r)
    check_exact(r)


@pytest.fixture
def tls_target(request, tls_certs, threads):  # noqa: F811
    """(port, pid, certificates) of a midge whose second listener is TLS (midge only: the
    mosquitto stand-in of these tests has no TLS listener)."""
    if not USE_MIDGE:
        pytest.skip("TLS smoke runs against midge")
    port = conftest.free_port()
    b = request.getfixturevalue("broker_factory")(extra=LIMITS + [
        "listener %d 127.0.0.1" % port, "cafile %s" % tls_certs.ca,
        "certfile %s" % tls_certs.server_cert, "keyfile %s" % tls_certs.server_key])
    return port, b.pid, tls_certs


@pytest.mark.single_thread
def test_pairs_over_tls(tls_target):
    """--cafile: every connection runs TLS (net/tls.c, client mode); QoS 1 exact counts."""
    port, pid, c = tls_target
    r = bench(port, pid, "pairs", "-c", "3", "-q", "1", "-s", "64", "--cafile", c.ca)
    check_counts(r)
    check_exact(r)


@pytest.mark.single_thread
@pytest.mark.parametrize("resume", [False, True], ids=["full", "resume"])
def test_tls_handshakes(tls_target, resume):
    """hs: TLS connections set up and closed in a loop; with --resume every one after each
    loop's first resumes its session, without it none does."""
    port, pid, c = tls_target
    argv = [BENCH, "hs", "-c", "2", "--cafile", c.ca, "-p", str(port), "--broker-pid", str(pid),
            "--json", "-d", "1", "-w", "0.3"] + (["--resume"] if resume else [])
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, env=ENV)
    err = p.stderr.decode("utf-8", "replace")
    for pat in conftest.SANITIZER_PATTERNS:
        assert pat not in err, "sanitizer report from midge_bench:\n" + err[-6000:]
    assert p.returncode == 0, err
    r = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert r["failed"] == 0 and r["handshakes"] > 0, r
    assert r["resumed"] == (r["handshakes"] if resume else 0), r


@pytest.mark.threaded
@pytest.mark.two_threads
def test_tls_handshakes_on_two_workers(tls_target, threads):
    """hs with 8 loops against `threads 2`: each loop reconnects with its client id, which
    its previous connection may still hold on the other worker, so CONNECTs are handed to
    the other worker together with the TLS connection and the session ticket it holds (to
    go out with the CONNACK). Every connection must get its CONNACK: a CONNACK lost in the
    hand-off (as when the first worker still queued the connection for its own flush) is a
    failed connection here."""
    assert threads == 2
    port, pid, c = tls_target
    argv = [BENCH, "hs", "-c", "8", "--resume", "--no-verify", "--cafile", c.ca, "-p", str(port),
            "--broker-pid", str(pid), "--json", "-d", "2", "-w", "0.2"]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, env=ENV)
    err = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, err
    r = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert r["failed"] == 0 and r["handshakes"] > 0, (r, err)


@pytest.fixture
def ws_target(request, threads):
    """(port, pid) of a midge whose second listener speaks only WebSockets: a client that did
    not upgrade would get HTTP 400 there, so counts that come out right prove the upgrade."""
    if not USE_MIDGE:
        pytest.skip("WebSockets smoke runs against midge (the mosquitto stand-in has no ws)")
    port = conftest.free_port()
    b = request.getfixturevalue("broker_factory")(extra=LIMITS + [
        "listener %d 127.0.0.1" % port, "protocol websockets"])
    return port, b.pid


@pytest.mark.single_thread
def test_pairs_over_websockets(ws_target):
    """--ws PATH: every connection upgrades (net/ws.c, client end); QoS 1 exact counts."""
    port, pid = ws_target
    r = bench(port, pid, "pairs", "-c", "3", "-q", "1", "-s", "64", "--ws", "/mqtt")
    check_counts(r)
    check_exact(r)


@pytest.mark.single_thread
def test_conn_over_websockets(ws_target):
    port, pid = ws_target
    r = bench(port, pid, "conn", "-c", "50", "--ws", "/mqtt")
    assert r["exit"] == 0, r["stderr"]
    assert r["connected"] == 50 and r["failed"] == 0


@pytest.mark.single_thread
def test_websockets_flag_against_a_plain_listener_fails(target):
    """The other way round: --ws against a plain MQTT listener never gets its 101, and says so."""
    port, pid = target
    r = bench(port, pid, "conn", "-c", "2", "--ws", "/mqtt", timeout=30)
    assert r.get("connected", 0) == 0, r
    assert "WebSocket handshake failed" in r["stderr"], r["stderr"]
