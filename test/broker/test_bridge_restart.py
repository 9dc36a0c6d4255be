"""Bridges inside midge (issue 12) when the remote goes away: killed and restarted under QoS 1
and 2 traffic (nothing acknowledged lost, QoS 2 not duplicated, the state topic follows),
failover between two addresses, lazy start and idle stop.

Every wait is for an event (a message, a log line the bridge writes when it acts), bounded in
time; nothing is measured against a clock.
"""

import re
import signal
import time

import pytest

from mqtt_raw import PUBLISH, PUBREL, RawClient, puback, pubcomp, pubrec
from lib.harness import IS_MIDGE, Broker, free_port

pytestmark = pytest.mark.skipif(not IS_MIDGE, reason="midge's own bridges")


def connect_retry(port, cid, timeout=20.0, **kw):
    """Connect once the broker listens again (it is restarting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            c = RawClient(port)
            c.connect(cid, **kw)
            return c
        except (OSError, AssertionError, Exception):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Receiver:
    """A QoS 1/2 subscriber whose QoS 2 state (PUBREC sent, PUBREL not yet) outlives its
    connection, as the spec's receiver keeps it: a resent PUBLISH of a packet id it still
    holds is the same message, not a new one."""

    def __init__(self):
        self.pending = set()
        self.got = {1: [], 2: []}

    def pump(self, c, until_n, timeout=30.0):
        deadline = time.monotonic() + timeout
        while sum(len(set(v)) for v in self.got.values()) < until_n or self.pending:
            p = c.recv(max(0.05, deadline - time.monotonic()))
            if p.type == PUBLISH and p.qos == 1:
                self.got[1].append(p.payload)
                c.send(puback(p.pid))
            elif p.type == PUBLISH and p.qos == 2:
                if p.pid not in self.pending:
                    self.got[2].append(p.payload)
                    self.pending.add(p.pid)
                c.send(pubrec(p.pid))
            elif p.type == PUBREL:
                self.pending.discard(p.pid)
                c.send(pubcomp(p.pid))
            elif p.type != PUBLISH:
                raise AssertionError("unexpected %r" % p)


def test_remote_killed_and_restarted_under_qos_traffic(tmp_path):
    """near bridges q/# (QoS 2) to far, which has persistence and a subscriber with a
    persistent session. far is SIGKILLed after a third of the messages and started again
    while near's publisher goes on: every message near acknowledged reaches the subscriber,
    each QoS 2 one once; near's state topic goes 1, 0, 1."""
    fport = free_port()
    far_extra = ["persistence true", "max_queued_messages 0"]
    far = Broker(tmp_path, threads=2, name="far0", port=fport, extra=far_extra)
    near = Broker(tmp_path, threads=2, name="near", extra=[
        "connection up", "address 127.0.0.1:%d" % fport, "remote_clientid near-up",
        "restart_timeout 1", "cleansession false", "max_queued_messages 0", "topic q/# out 2"])
    state = RawClient(near.port)
    state.connect("state")
    state.subscribe([("$SYS/broker/connection/near-up/state", 1)])
    sub = RawClient(fport)
    sub.connect("far-sub", clean=False)
    sub.subscribe([("q/#", 2)])
    pub = RawClient(near.port)
    pub.connect("near-pub")
    rx = Receiver()
    try:
        p = state.recv_publish(timeout=20)
        while p.payload != b"1":  # the retained '0' of the start, then '1' once up
            p = state.recv_publish(timeout=20)
        n = 60
        msgs = [(1 + i % 2, b"m%03d" % i) for i in range(n)]
        for qos, payload in msgs[:20]:
            pub.publish("q/%d" % qos, payload, qos=qos)  # acknowledged by near
        rx.pump(sub, 20)  # far delivered them: the bridge is carrying traffic
        for qos, payload in msgs[20:30]:
            pub.publish("q/%d" % qos, payload, qos=qos)
        far.proc.send_signal(signal.SIGKILL)
        far.proc.wait(timeout=10)
        far.stop(check=False)
        sub.close()
        assert state.recv_publish(timeout=20).payload == b"0"
        for qos, payload in msgs[30:]:
            pub.publish("q/%d" % qos, payload, qos=qos)  # queued at near for the remote
        far = Broker(tmp_path, threads=2, name="far1", port=fport, extra=far_extra)
        assert state.recv_publish(timeout=20).payload == b"1"
        sub = connect_retry(fport, "far-sub", clean=False)
        rx.pump(sub, n)
        for qos in (1, 2):
            want = sorted(p for q, p in msgs if q == qos)
            assert sorted(set(rx.got[qos])) == want, "lost QoS %d messages" % qos
        assert sorted(rx.got[2]) == sorted(set(rx.got[2])), "QoS 2 duplicated: %r" % rx.got[2]
    finally:
        for c in (state, sub, pub):
            c.close()
        far.stop()
        near.stop()


def test_failover_between_two_addresses(tmp_path):
    """address A B, round_robin true: A is down, so the bridge runs to B; B stops and A is up,
    so it runs to A. A QoS 1 message published while it switches waits and arrives."""
    pa, pb = free_port(), free_port()
    near = Broker(tmp_path, threads=1, name="near", extra=[
        "connection fo", "address 127.0.0.1:%d 127.0.0.1:%d" % (pa, pb), "round_robin true",
        "remote_clientid near-fo", "restart_timeout 1", "topic f/# out 1"])
    b = Broker(tmp_path, threads=1, name="b", port=pb)
    pub = RawClient(near.port)
    pub.connect("fo-pub")
    sb = RawClient(pb)
    sb.connect("sb")
    sb.subscribe([("f/#", 1)])
    a = sa = None
    try:
        pub.publish("f/1", b"to-b", qos=1)
        p = sb.recv_publish(timeout=20)
        assert (p.topic, p.payload) == ("f/1", b"to-b")
        near.wait_log(r"Connecting bridge fo \(127\.0\.0\.1:%d\)" % pa)  # tried A first
        a = Broker(tmp_path, threads=1, name="a", port=pa)
        sa = RawClient(pa)
        sa.connect("sa")
        sa.subscribe([("f/#", 1)])
        sb.close()
        b.stop()
        pub.publish("f/2", b"to-a", qos=1)
        p = sa.recv_publish(timeout=20)
        assert (p.topic, p.payload) == ("f/2", b"to-a")
    finally:
        for c in (pub, sb, sa):
            if c:
                c.close()
        for x in (a, b, near):
            if x:
                x.stop()


@pytest.mark.parametrize("first", ["127.0.0.1", "localhost"])
def test_back_to_the_first_address(tmp_path, first):
    """round_robin false (the default): on the second address, the bridge checks the first
    every 5 s and goes back to it once it is there. As a host name, the first address is
    looked up for each check in the lookup helper (broker/resolve.h), off the loop."""
    pa, pb = free_port(), free_port()
    near = Broker(tmp_path, threads=1, name="near", extra=[
        "connection pr", "address %s:%d 127.0.0.1:%d" % (first, pa, pb),
        "remote_clientid near-pr", "restart_timeout 1", "topic f/# out 1"])
    b = Broker(tmp_path, threads=1, name="b", port=pb)
    a = None
    try:
        near.wait_log(r"Received CONNACK on connection local\.near-pr", timeout=20)
        a = Broker(tmp_path, threads=1, name="a", port=pa)
        sa = RawClient(pa)
        sa.connect("sa")
        sa.subscribe([("$SYS/broker/connection/near-pr/state", 1)])
        p = sa.recv_publish(timeout=30)  # the bridge's '1' on connecting to A (retained, or
        assert p.payload == b"1"         # live with retain 0 when sa subscribed first)
        near.wait_log(r"Connecting bridge pr \(%s:%d\)" % (re.escape(first), pa), count=2)
        sa.close()
    finally:
        for x in (a, b, near):
            if x:
                x.stop()


def test_lazy_start_and_idle_stop(tmp_path):
    """start_type lazy, threshold 3: no connection until three messages wait; then all three
    arrive; after idle_timeout without traffic the bridge disconnects, and three more bring it
    back."""
    far = Broker(tmp_path, threads=1, name="far")
    near = Broker(tmp_path, threads=1, name="near", extra=[
        "connection lz", "address 127.0.0.1:%d" % far.port, "remote_clientid near-lz",
        "start_type lazy", "threshold 3", "idle_timeout 1", "topic z/# out 1"])
    sub = RawClient(far.port)
    sub.connect("lz-sub")
    sub.subscribe([("z/#", 1)])
    pub = RawClient(near.port)
    pub.connect("lz-pub")
    try:
        near.wait_log(r"Bridge local\.near-lz doing local SUBSCRIBE on topic z/#")  # ticked
        pub.publish("z/1", b"1", qos=1)
        pub.publish("z/2", b"2", qos=1)
        near.wait_log(r"Received PUBLISH from lz-pub .*'z/2'")
        assert "Connecting bridge lz" not in near.log()
        pub.publish("z/3", b"3", qos=1)
        got = [sub.recv_publish(timeout=20).payload for _ in range(3)]
        assert got == [b"1", b"2", b"3"]
        near.wait_log(r"Bridge connection local\.near-lz has exceeded idle timeout, disconnecting\.",
                      timeout=20)
        for i in (4, 5, 6):
            pub.publish("z/%d" % i, b"%d" % i, qos=1)
        got = [sub.recv_publish(timeout=20).payload for _ in range(3)]
        assert got == [b"4", b"5", b"6"]
        # the log is written apart from the sockets (it may trail the messages on a busy
        # machine): wait for the second connection's line, then check there is no third
        near.wait_log(r"Connecting bridge lz", timeout=20, count=2)
        assert len(__import__("re").findall(r"Connecting bridge lz", near.log())) == 2
    finally:
        sub.close()
        pub.close()
        near.stop()
        far.stop()


def test_reload_keeps_the_bridge(tmp_path):
    """SIGHUP re-checks who may stay connected; the bridge's own connection is not a client of
    this broker and stays up, also when allow_anonymous turns false."""
    import subprocess
    pw = tmp_path / "passwd"
    subprocess.run(["/usr/bin/mosquitto_passwd", "-c", "-b", str(pw), "u", "p"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    far = Broker(tmp_path, threads=1, name="far")
    lines = ["password_file %s" % pw, "connection rl", "address 127.0.0.1:%d" % far.port,
             "remote_clientid near-rl", "restart_timeout 1", "topic r/# out 1"]
    near = Broker(tmp_path, threads=2, name="near", extra=lines)
    sub = RawClient(far.port)
    sub.connect("rl-sub")
    sub.subscribe([("r/#", 1)])
    pub = RawClient(near.port)
    pub.connect("rl-pub", username="u", password="p")
    try:
        pub.publish("r/1", b"before", qos=1)
        assert sub.recv_publish(timeout=20).payload == b"before"
        near.conf_head = [l for l in near.conf_head if l != "allow_anonymous true"]
        near.rewrite_conf(["allow_anonymous false"] + lines)
        near.proc.send_signal(signal.SIGHUP)
        near.wait_log(r"Reloaded configuration from")
        pub.publish("r/2", b"after", qos=1)
        assert sub.recv_publish(timeout=20).payload == b"after"
        assert near.log().count("Connecting bridge rl") == 1, near.log()[-3000:]
    finally:
        sub.close()
        pub.close()
        near.stop()
        far.stop()


def test_start_type_once(tmp_path):
    """start_type once: after the remote went away the bridge does not start again, while an
    automatic one beside it (the same restart_timeout, the same remote) does."""
    fport = free_port()
    far = Broker(tmp_path, threads=1, name="far0", port=fport)
    near = Broker(tmp_path, threads=1, name="near", extra=[
        "connection once", "address 127.0.0.1:%d" % fport, "remote_clientid near-once",
        "start_type once", "restart_timeout 1", "topic o/# out 1",
        "connection auto", "address 127.0.0.1:%d" % fport, "remote_clientid near-auto",
        "restart_timeout 1", "topic a/# out 1"])
    try:
        near.wait_log(r"Received CONNACK on connection local\.near-once", timeout=20)
        near.wait_log(r"Received CONNACK on connection local\.near-auto", timeout=20)
        far.stop()
        far = Broker(tmp_path, threads=1, name="far1", port=fport)
        near.wait_log(r"Received CONNACK on connection local\.near-auto", count=2, timeout=20)
        assert near.log().count("Connecting bridge once") == 1
    finally:
        far.stop()
        near.stop()


@pytest.mark.parametrize("nthreads", [1, 2])
def test_local_restart_keeps_what_waits(tmp_path, nthreads):
    """persistence true on the bridging broker: QoS 1 messages it acknowledged while the
    remote was down wait in the bridge's session on disk, survive a SIGKILL of the bridging
    broker, and reach the remote after both are up again."""
    nport, fport = free_port(), free_port()
    near_extra = ["persistence true", "connection st", "address 127.0.0.1:%d" % fport,
                  "remote_clientid near-st", "restart_timeout 1", "topic p/# out 1"]
    near = Broker(tmp_path, threads=nthreads, name="near0", port=nport, extra=near_extra)
    # its first tick wrote the bridge's session (the store is the worker's): from then on
    near.wait_log(r"Connecting bridge st", timeout=20)
    pub = RawClient(nport)
    pub.connect("st-pub")
    far = sub = None
    try:
        sent = [b"w%d" % i for i in range(5)]
        for i, m in enumerate(sent):
            pub.publish("p/%d" % i, m, qos=1, pid=i + 1)  # acknowledged: stored for the bridge
        pub.close()
        near.proc.send_signal(signal.SIGKILL)
        near.proc.wait(timeout=10)
        near.stop(check=False)
        far = Broker(tmp_path, threads=1, name="far", port=fport)
        sub = RawClient(fport)
        sub.connect("st-sub")
        sub.subscribe([("p/#", 1)])
        near = Broker(tmp_path, threads=nthreads, name="near1", port=nport, extra=near_extra)
        got = []
        try:
            for _ in sent:
                got.append(sub.recv_publish(timeout=20).payload)
        except Exception:
            raise AssertionError("got %r of %r; near log:\n%s" % (got, sent, near.log()[-3000:]))
        assert sorted(got) == sorted(sent)
    finally:
        for c in (pub, sub):
            if c:
                c.close()
        for b in (near, far):
            if b:
                b.stop()


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "persistent"])
def test_client_takes_the_bridges_client_id(tmp_path, clean):
    """A client that connects with the bridge's local_clientid takes its session over (as any
    takeover): the bridge's connection ends, the bridge waits while the client holds the id,
    and runs again once it has gone. Nothing is freed twice (ASan)."""
    far = Broker(tmp_path, threads=1, name="far")
    near = Broker(tmp_path, threads=2, name="near", extra=[
        "connection tk", "address 127.0.0.1:%d" % far.port, "remote_clientid near-tk",
        "local_clientid lc-tk", "restart_timeout 1", "topic k/# out 1"])
    sub = RawClient(far.port)
    sub.connect("tk-sub")
    sub.subscribe([("k/#", 1)])
    pub = RawClient(near.port)
    pub.connect("tk-pub")
    try:
        near.wait_log(r"Received CONNACK on connection lc-tk", timeout=20)
        evil = RawClient(near.port)
        evil.connect("lc-tk", clean=clean)
        near.wait_log(r"Client lc-tk already connected, closing old connection")
        evil.disconnect()
        near.wait_log(r"Received CONNACK on connection lc-tk", count=2, timeout=20)
        pub.publish("k/1", b"again", qos=1)
        p = sub.recv_publish(timeout=20)
        assert (p.topic, p.payload) == ("k/1", b"again")
    finally:
        sub.close()
        pub.close()
        near.stop()
        far.stop()
