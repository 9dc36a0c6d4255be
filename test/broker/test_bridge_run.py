"""Bridges inside midge (issue 12): `connection` blocks of midge.conf, run on a worker's loop.

midge bridged to Debian's mosquitto 2.0.11 in 3.1, 3.1.1 and 5.0 with a table of topic /
direction / prefix cases checked message by message; two midges bridged both ways on '#'
without a storm; the state topic. Every negative check ends on a sync point: a sentinel sent
the same way the unwanted message would go, after it (never a sleep).

The brokers live for the module (one start each). midge only: these are midge's bridges (the
far end as a mosquitto bridge sees it is test_bridge.py, which runs against both).
"""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from mqtt_raw import RawClient
from lib.harness import IS_MIDGE, MIDGE_BUILD, Broker, assert_nothing_before_ping, free_port

pytestmark = pytest.mark.skipif(not IS_MIDGE, reason="midge's own bridges")

MOSQUITTO = "/usr/sbin/mosquitto"


class Mosquitto:
    """Debian's mosquitto on a free loopback port, its log in a file."""

    def __init__(self, tmp, name, lines=(), port=None):
        self.port = port or free_port()
        self.conf = tmp / ("%s.conf" % name)
        self.log_path = tmp / ("%s.log" % name)
        self.conf.write_text("\n".join(["listener %d 127.0.0.1" % self.port,
                                        "allow_anonymous true"] + list(lines)) + "\n")
        self._f = open(self.log_path, "wb")
        self.p = subprocess.Popen([MOSQUITTO, "-c", str(self.conf), "-v"], stdout=self._f,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                assert self.p.poll() is None, "mosquitto exited:\n" + self.log()
                assert time.monotonic() < deadline, "mosquitto not listening:\n" + self.log()
                time.sleep(0.05)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._f.close()


def wait_bridged(pub, sub, topic, what, timeout=20.0):
    """QoS 0 on `pub` until `sub` (subscribed to topic) gets one: the bridge is up with its
    subscriptions. The retries are the sync; nothing is timed. Later copies are drained."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        pub.publish(topic, b"sync%d" % n, qos=0)
        try:
            p = sub.recv_publish(timeout=0.3)
        except Exception:
            continue
        assert p.topic == topic, p
        while p.payload != b"sync%d" % n:
            p = sub.recv_publish()
        return
    raise AssertionError("%s never bridged" % what)


def until(sub, topic, payload, got):
    """Receive on sub until (topic, payload) arrives; everything before it goes into got."""
    while True:
        p = sub.recv_publish(timeout=10)
        if (p.topic, p.payload) == (topic, payload):
            return
        got.append((p.topic, p.payload))


# ---- midge bridged to mosquitto, three protocol versions, a table of topics

BRIDGE_TOPICS = [
    "topic out/# out 1",
    "topic in/# in 1",
    "topic both/# both 1",
    "topic # out 1 loc/ rem/",
    "topic # in 1 lin/ rin/",
    'topic jpeg out 0 "" house1/',
    'topic "" in 1 cam/frame house1/cam',
]

# (published on L(ocal midge) or R(emote mosquitto), topic, what the other side gets or None)
CASES = [
    ("L", "out/1", "out/1"),
    ("R", "in/2", "in/2"),
    ("R", "out/3", None),          # an out topic does not come in
    ("L", "in/4", None),           # an in topic does not go out
    ("L", "both/5", "both/5"),
    ("R", "both/6", "both/6"),
    ("L", "loc/7", "rem/7"),       # local prefix cut, remote prefix put
    ("R", "rin/8", "lin/8"),
    ("L", "jpeg", "house1/jpeg"),  # the lecture's camera, "" as the local prefix
    ("R", "house1/cam", "cam/frame"),  # "" as the pattern: the prefixes are the topics
    ("L", "other/9", None),
    ("R", "rem/10", None),         # the remote name of an out topic does not come back in
]


@pytest.fixture(scope="module", params=["mqttv31", "mqttv311", "mqttv50"])
def mosq_pair(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bridge-" + request.param)
    remote = Mosquitto(tmp, "remote")
    local = Broker(tmp, threads=2, name="local", extra=[
        "connection far", "address 127.0.0.1:%d" % remote.port,
        "remote_clientid br-%s" % request.param, "bridge_protocol_version %s" % request.param,
        "restart_timeout 1", "cleansession true"] + BRIDGE_TOPICS)
    clients = {k: RawClient(local.port if k[0] == "L" else remote.port)
               for k in ("Lpub", "Lsub", "Rpub", "Rsub")}
    for k, c in clients.items():
        c.connect("%s-%s" % (k, request.param))
    clients["Lsub"].subscribe([("#", 1)])
    clients["Rsub"].subscribe([("#", 1)])
    wait_bridged(clients["Rpub"], clients["Lsub"], "in/sync", "in")
    # Lsub and Rsub got syncs of their own side too: drain both with sentinels
    clients["Rpub"].publish("in/d", b"d", qos=1)
    until(clients["Rsub"], "in/d", b"d", [])
    until(clients["Lsub"], "in/d", b"d", [])
    yield request.param, local, remote, clients
    for c in clients.values():
        c.close()
    remote.stop()
    local.stop()


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[1] for c in CASES])
def test_topic_table_through_mosquitto(mosq_pair, case):
    """One published message crosses (mapped) or not, exactly once, and never comes back: a
    sentinel goes the same way after it, then one comes back the other way after any echo."""
    proto, local, remote, cl = mosq_pair
    side, topic, want = CASES[case]
    payload = b"%s-%d" % (proto.encode(), case)
    if side == "L":
        pub, same, other = cl["Lpub"], cl["Lsub"], cl["Rsub"]
        there, back, back_pub = ("out/sL", b"s%d" % case), ("in/sR", b"s%d" % case), cl["Rpub"]
    else:
        pub, same, other = cl["Rpub"], cl["Rsub"], cl["Lsub"]
        there, back, back_pub = ("in/sR", b"s%d" % case), ("out/sL", b"s%d" % case), cl["Lpub"]
    pub.publish(topic, payload, qos=1)
    pub.publish(there[0], there[1], qos=1)   # crosses after the message
    got_other, got_same = [], []
    until(other, there[0], there[1], got_other)
    back_pub.publish(back[0], back[1], qos=1)  # crosses back after any echo
    until(same, there[0], there[1], got_same)  # its own copy of the first sentinel
    until(same, back[0], back[1], got_same)
    until(other, back[0], back[1], got_other)  # its own copy of the second
    assert got_same == [(topic, payload)], "the publishing side: %r" % got_same
    assert got_other == ([(want, payload)] if want else []), "the other side: %r" % got_other


def test_bridge_protocol_and_log(mosq_pair):
    """The remote saw a bridge: 3.x with the try_private bit (mosquitto logs 'New bridge'),
    5.0 as a client (No Local in its SUBSCRIBE does the work); midge says it in mosquitto's
    words."""
    proto, local, remote, cl = mosq_pair
    rlog = remote.log()
    if proto == "mqttv50":
        assert "as br-mqttv50 (p5, c1, k60)" in rlog
    else:
        assert "New bridge connected from" in rlog
        assert "as br-%s (p%d, c1, k60)" % (proto, 1 if proto == "mqttv31" else 2) in rlog
    llog = local.log()
    assert "Connecting bridge far (127.0.0.1:%d)" % remote.port in llog
    assert "Received CONNACK on connection local.br-%s." % proto in llog
    assert "Bridge local.br-%s doing local SUBSCRIBE on topic loc/#" % proto in llog
    assert "Bridge local.br-%s sending SUBSCRIBE (Mid: " % proto in llog


# ---- two midges bridged both ways on '#'

@pytest.fixture(scope="module")
def midge_pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bridge-midge")
    far = Broker(tmp, threads=2, name="far")
    near = Broker(tmp, threads=2, name="near", extra=[
        "connection both", "address 127.0.0.1:%d" % far.port, "remote_clientid near-both",
        "restart_timeout 1", "topic # both 1"])
    cl = {k: RawClient(near.port if k[0] == "N" else far.port)
          for k in ("Npub", "Nsub", "Fpub", "Fsub")}
    for k, c in cl.items():
        c.connect("mm-" + k)
    cl["Nsub"].subscribe([("#", 1)])
    cl["Fsub"].subscribe([("#", 1)])
    wait_bridged(cl["Npub"], cl["Fsub"], "sync/n", "near to far")
    until(cl["Nsub"], "sync/n", b"sync1", [])  # Nsub's own sync copies: drained by a sentinel
    cl["Npub"].publish("sync/d", b"d", qos=1)
    until(cl["Nsub"], "sync/d", b"d", [])
    until(cl["Fsub"], "sync/d", b"d", [])
    yield near, far, cl
    for c in cl.values():
        c.close()
    near.stop()
    far.stop()


@pytest.mark.threaded
@pytest.mark.parametrize("side", ["near", "far"])
def test_both_ways_on_hash_no_storm(midge_pair, side):
    """topic # both: each message reaches each side exactly once. A storm would put echoes
    on the bridge before the sentinels that follow the same way."""
    near, far, cl = midge_pair
    if side == "near":
        pub, same, other, back_pub = cl["Npub"], cl["Nsub"], cl["Fsub"], cl["Fpub"]
    else:
        pub, same, other, back_pub = cl["Fpub"], cl["Fsub"], cl["Nsub"], cl["Npub"]
    sent = [("room/%s/%d" % (side, i), b"m%d" % i) for i in range(10)]
    for i, (t, p) in enumerate(sent):
        pub.publish(t, p, qos=1 + i % 2, pid=i + 1)
    pub.publish("s/there", side.encode(), qos=1)
    got_other, got_same = [], []
    until(other, "s/there", side.encode(), got_other)
    back_pub.publish("s/back", side.encode(), qos=1)
    until(same, "s/there", side.encode(), got_same)
    until(same, "s/back", side.encode(), got_same)
    until(other, "s/back", side.encode(), got_other)
    assert sorted(got_other) == sorted(sent)
    assert sorted(got_same) == sorted(sent)


def test_state_topic_both_sides(midge_pair):
    """$SYS/broker/connection/<remote_clientid>/state is '1', retained, on both brokers while
    the bridge is up (locally published, remotely sent on connect)."""
    near, far, cl = midge_pair
    for port in (near.port, far.port):
        c = RawClient(port)
        try:
            c.connect("state-%d" % port)
            c.subscribe([("$SYS/broker/connection/near-both/state", 1)])
            p = c.recv_publish()
            assert (p.payload, p.retain) == (b"1", True)
        finally:
            c.close()


def test_retained_crosses_retained(midge_pair):
    """A retained message published near is stored retained far too (the bridge's
    subscription is Retain As Published): a client that subscribes later gets it."""
    near, far, cl = midge_pair
    cl["Npub"].publish("keep/r", b"kept", qos=1, retain=True)
    until(cl["Fsub"], "keep/r", b"kept", [])
    late = RawClient(far.port)
    try:
        late.connect("late")
        late.subscribe([("keep/r", 1)])
        p = late.recv_publish()
        assert (p.topic, p.payload, p.retain) == ("keep/r", b"kept", True)
    finally:
        late.close()
        cl["Npub"].publish("keep/r", b"", qos=1, retain=True)  # clear it, on both sides
        until(cl["Fsub"], "keep/r", b"", [])
        until(cl["Nsub"], "keep/r", b"", [])


def test_load_through_the_bridge(midge_pair):
    """midge_bench pairs at QoS 1 with publishers near and subscribers far (--sub-port):
    nothing lost, duplicated or out of order under load. Counts, never speed. The window
    keeps what waits in the bridge's session below max_queued_messages (1000 by default):
    beyond it the bridge drops, as any session does."""
    near, far, cl = midge_pair
    bench = os.path.join(MIDGE_BUILD, "bin", "midge_bench")
    p = subprocess.run([bench, "pairs", "-c", "4", "-q", "1", "-s", "16", "-p", str(near.port),
                        "--sub-port", str(far.port), "--prefix", "ld", "--json", "-d", "1",
                        "-w", "0.3", "--drain", "10", "--threads", "1", "--window", "64", "--broker-pid",
                        str(near.pid), "--broker-pid2", str(far.pid)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    r = json.loads(p.stdout.decode().strip().splitlines()[-1])
    assert r["sent"] > 0 and r["lost"] == 0 and r["duplicated"] == 0, r
    assert r["out_of_order"] == 0 and r["failed"] == 0 and r["protocol_errors"] == 0, r
    assert r["broker_cpu_s"] >= 0  # both pids were read


@pytest.fixture(scope="module")
def opts_pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bridge-opts")
    far = Broker(tmp, threads=1, name="far")
    near = Broker(tmp, threads=1, name="near", extra=[
        "connection opts", "address 127.0.0.1:%d" % far.port, "remote_clientid near-opts",
        "restart_timeout 1", "notifications_local_only true", "bridge_outgoing_retain false",
        "bridge_max_packet_size 200", "topic o/# out 1"])
    pub, sub = RawClient(near.port), RawClient(far.port)
    pub.connect("o-pub")
    sub.connect("o-sub")
    sub.subscribe([("o/#", 1)])
    wait_bridged(pub, sub, "o/sync", "opts")
    yield near, far, pub, sub
    pub.close()
    sub.close()
    near.stop()
    far.stop()


def test_outgoing_retain_false(opts_pair):
    """bridge_outgoing_retain false: the remote gets the message, but not as retained."""
    near, far, pub, sub = opts_pair
    pub.publish("o/r", b"r", qos=1, retain=True)
    p = sub.recv_publish()
    assert (p.topic, p.payload) == ("o/r", b"r")
    late = RawClient(far.port)
    try:
        late.connect("o-late")
        late.subscribe([("o/r", 1)])
        assert_nothing_before_ping(late)  # no retained message came after the SUBACK
    finally:
        late.close()


def test_max_packet_size(opts_pair):
    """bridge_max_packet_size 200: a larger message is not sent to the remote; the next one is."""
    near, far, pub, sub = opts_pair
    pub.publish("o/big", b"x" * 300, qos=1)
    pub.publish("o/small", b"y", qos=1)
    p = sub.recv_publish()
    assert (p.topic, p.payload) == ("o/small", b"y")


def test_notifications_local_only(opts_pair):
    """The state topic is '1' locally and absent at the remote (no will, no '1')."""
    near, far, pub, sub = opts_pair
    for port, want in ((near.port, b"1"), (far.port, None)):
        c = RawClient(port)
        try:
            c.connect("o-state-%d" % port)
            c.subscribe([("$SYS/broker/connection/near-opts/state", 1)])
            if want:
                assert c.recv_publish().payload == want
            else:
                assert_nothing_before_ping(c)
        finally:
            c.close()
    assert "New bridge connected" in far.log() and "(p2, c0, k60)" in far.log()


# ---- bridge_attempt_unsubscribe against Debian's mosquitto

@pytest.mark.parametrize("attempt", [True, False], ids=["unsubscribe", "keep"])
def test_attempt_unsubscribe_through_mosquitto(tmp_path, attempt):
    """A topic that was `in` and is now `out`: with bridge_attempt_unsubscribe true (the
    default) the bridge sends UNSUBSCRIBE for its remote topic on connect, as mosquitto's
    bridge__on_connect does, so the remote session that kept the old subscription
    (cleansession false) stops sending it; with false the old subscription goes on bringing
    remote messages in. The sync: s2/# is new in the second run, subscribed after the
    UNSUBSCRIBE (topic order), so once s2 messages cross the remote has handled it."""
    remote = Mosquitto(tmp_path, "remote")
    common = ["restart_timeout 1", "cleansession false", "remote_clientid near-unsub"]
    first = Broker(tmp_path, threads=1, name="first", extra=[
        "connection u", "address 127.0.0.1:%d" % remote.port] + common + ["topic x/# in 1"])
    rpub, lsub = RawClient(remote.port), None
    try:
        rpub.connect("u-rpub")
        lsub = RawClient(first.port)
        lsub.connect("u-lsub1")
        lsub.subscribe([("x/#", 1)])
        wait_bridged(rpub, lsub, "x/sync", "x in")
        lsub.close()
        first.stop()
        second = Broker(tmp_path, threads=1, name="second", extra=[
            "connection u", "address 127.0.0.1:%d" % remote.port] + common +
            ["bridge_attempt_unsubscribe %s" % str(attempt).lower(), "topic x/# out 1",
             "topic s2/# in 1"])
        try:
            lsub = RawClient(second.port)
            lsub.connect("u-lsub2")
            lsub.subscribe([("#", 1)])
            wait_bridged(rpub, lsub, "s2/sync", "s2 in")
            rpub.publish("x/after", b"old sub", qos=1)
            rpub.publish("s2/end", b"end", qos=1)
            got = []
            until(lsub, "s2/end", b"end", got)
            assert got == ([] if attempt else [("x/after", b"old sub")]), got
            unsub = "Bridge local.near-unsub sending UNSUBSCRIBE (Mid: "
            assert (unsub in second.log()) == attempt, second.log()
            assert ("Received UNSUBSCRIBE from near-unsub" in remote.log()) == attempt
        finally:
            second.stop()
    finally:
        rpub.close()
        if lsub:
            lsub.close()
        remote.stop()


def test_remote_maximum_qos_through_mosquitto(tmp_path):
    """A 5.0 remote with Maximum QoS 1 (mosquitto's `max_qos 1`): the bridge subscribes, sends
    its notification and forwards QoS 2 messages at QoS 1 at most, as mosquitto's own bridge
    caps them; a QoS 2 PUBLISH would make the remote disconnect it (0x9B)."""
    remote = Mosquitto(tmp_path, "remote", ["max_qos 1"])
    near = Broker(tmp_path, threads=1, name="near", extra=[
        "connection mq", "address 127.0.0.1:%d" % remote.port, "remote_clientid near-mq",
        "bridge_protocol_version mqttv50", "restart_timeout 1", "topic q/# out 2",
        "topic r/# in 2"])
    lpub, lsub = RawClient(near.port), RawClient(near.port)
    rpub, rsub = RawClient(remote.port), RawClient(remote.port)
    try:
        for c, n in ((lpub, "mq-lpub"), (lsub, "mq-lsub"), (rpub, "mq-rpub"), (rsub, "mq-rsub")):
            c.connect(n)
        lsub.subscribe([("r/#", 1)])
        rsub.subscribe([("q/#", 1)])
        wait_bridged(rpub, lsub, "r/sync", "r in")
        near.wait_log(r"Bridge local\.near-mq sending SUBSCRIBE \(Mid: \d+, Topic: r/#, QoS: 1,")
        lpub.publish("q/two", b"exactly once", qos=2)
        lpub.publish("q/one", b"at least once", qos=1)
        got = [rsub.recv_publish(timeout=20) for _ in range(2)]
        assert [(p.topic, p.payload, p.qos) for p in got] == [
            ("q/two", b"exactly once", 1), ("q/one", b"at least once", 1)]
        assert "Too high QoS" not in remote.log() and near.log().count("Connecting bridge mq") == 1
    finally:
        for c in (lpub, lsub, rpub, rsub):
            c.close()
        near.stop()
        remote.stop()
