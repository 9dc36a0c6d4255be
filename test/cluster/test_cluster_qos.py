"""QoS 1 and 2 across nodes through JetStream (docs/cluster.md "QoS 1 and 2 across nodes"):
an acknowledgement to the publisher means the NATS cluster stored the message, so neither
a midge node killed with SIGKILL nor one NATS server killed loses an acknowledged message
for a subscriber on another node.

Each test that kills something has a NATS cluster of its own (three Debian nats-server
processes routed on loopback, JetStream on: test/cluster/nats_cluster.py). The node that
publishes knows two NATS servers and the one it is connected to is killed, so its messages
meet a NATS connection that is down or being re-established: over core NATS (phase 1) they
were acknowledged from libnats's buffer and died with the node or the server.
"""

import signal
import time

import pytest

from harness import IS_MIDGE, Broker
from mqtt_raw import PUBACK, RawClient, publish

from cluster.nats_cluster import stop_all, NatsCluster, node
from cluster.test_cluster import interest_ready

pytestmark = [pytest.mark.skipif(not IS_MIDGE, reason="midge's own clustering"),
              pytest.mark.threaded]


@pytest.fixture
def stack(tmp_path):
    """A fresh NATS cluster; yields (nats, start) where start(name, servers) starts a node
    on those servers. Everything is stopped at the end (a node killed on purpose is not
    checked for a clean exit)."""
    nats = NatsCluster(tmp_path, 3)
    nodes = []

    def start(name, servers, extra=(), port=None):
        b = Broker(tmp_path, threads=2, name=name, port=port, extra=[
            "cluster_nats_url %s" % ",".join(s.url for s in servers),
            "cluster_node_name %s" % name] + list(extra))
        nodes.append(b)
        return b

    try:
        yield nats, start
    finally:
        stop_all(nodes, nats)


def my_server(nats, name, candidates):
    mine = [s for s in candidates if s.connection(name)]
    assert len(mine) == 1, "node %s is connected to %d of its servers" % (name, len(mine))
    return mine[0]


def test_a_node_killed_right_after_puback_loses_nothing(stack):
    """Publisher on K, subscriber's persistent session offline on B. K's NATS server is
    killed, a QoS 1 message is published on K, and K is killed with SIGKILL as soon as the
    PUBACK arrives: B still queues the message for the offline session."""
    nats, start = stack
    b = start("B", [nats.servers[2]])
    k = start("K", nats.servers[:2])
    sub = RawClient(b.port, version=4)
    sub.connect("k9-sub", clean=False)
    sub.subscribe([("k9/t", 1)])
    sub.disconnect()
    # a client of B on the same topic proves B's interest is in force from K's node (core
    # NATS, for QoS 0; the durable consumer needs no such wait)
    pub = RawClient(k.port, version=4)
    pub.connect("k9-pub")
    witness = RawClient(b.port, version=4)
    witness.connect("k9-witness")
    witness.subscribe([("k9/t", 0)])
    interest_ready(pub, [witness], "k9/t")
    srv = my_server(nats, "K", nats.servers[:2])
    srv.proc.kill()
    srv.proc.wait(timeout=10)
    pub.send(publish("k9/t", b"acknowledged", qos=1, pid=9))
    ack = pub.expect(PUBACK, timeout=60)
    assert ack.pid == 9
    k.stop(check=False, sig=signal.SIGKILL)
    sub = RawClient(b.port, version=4)
    assert sub.connect("k9-sub", clean=False).session_present == 1
    got = sub.recv_publish(timeout=30)
    assert (got.topic, got.payload, got.qos) == ("k9/t", b"acknowledged", 1)
    sub.close()
    witness.close()


def test_a_nats_server_killed_during_qos1_traffic_loses_nothing_acknowledged(stack):
    """QoS 1 messages flow from P to an online subscriber on S, 20 in flight at a time; the
    NATS server P is connected to is killed (SIGKILL) in the middle. Every message P
    acknowledged reaches the subscriber (a copy twice is QoS 1's right, none lost)."""
    nats, start = stack
    s = start("S", [nats.servers[2]])
    p = start("P", nats.servers[:2])
    sub = RawClient(s.port, version=4, timeout=30)
    sub.connect("nk-sub", clean=False)
    sub.subscribe([("nk/t", 1)])
    pub = RawClient(p.port, version=4)
    pub.connect("nk-pub")
    interest_ready(pub, [sub], "nk/t")
    srv = my_server(nats, "P", nats.servers[:2])
    acked = set()
    batches, per = 12, 20
    for bi in range(batches):
        if bi == 4:
            srv.proc.kill()
        for j in range(per):
            i = bi * per + j
            pub.send(publish("nk/t", b"m%d" % i, qos=1, pid=i + 1))
        for j in range(per):
            ack = pub.expect(PUBACK, timeout=60)
            acked.add(b"m%d" % (ack.pid - 1))
    assert len(acked) == batches * per
    got = set()
    deadline = time.monotonic() + 60
    while not acked <= got:
        assert time.monotonic() < deadline, "acknowledged but lost: %s" % sorted(acked - got)
        got.add(sub.recv_publish(timeout=max(0.1, deadline - time.monotonic())).payload)
    sub.close()
    pub.close()


def msgs_stream(server):
    """The stream MQTT_MSGS as the NATS server describes it (/jsz), or None."""
    for acct in server.get("/jsz?streams=true&config=true").get("account_details") or []:
        for st in acct.get("stream_detail") or []:
            if st.get("name") == "MQTT_MSGS":
                return st
    return None


def test_cluster_js_replicas_1_makes_a_one_replica_stream(stack):
    """cluster_js_replicas 1 (throughput first): the node that creates MQTT_MSGS makes it
    with one replica although it knows three NATS servers; a node started later with the
    default keeps the stream as it is and says so; QoS 1 crosses between them."""
    nats, start = stack
    a = start("A", nats.servers, extra=["cluster_js_replicas 1"])
    a.wait_log(r"QoS 1 and 2 messages through JetStream stream MQTT_MSGS")
    b = start("B", nats.servers)
    b.wait_log(r"the JetStream stream MQTT_MSGS exists with 1 replica, not 3: it is kept")
    # a server shows the streams it holds a replica of: one of the three
    held = [st for st in (msgs_stream(srv) for srv in nats.servers) if st]
    assert len(held) == 1 and held[0]["config"]["num_replicas"] == 1, held
    sub = RawClient(b.port, version=4)
    sub.connect("r1-sub")
    sub.subscribe([("r1/t", 1)])
    pub = RawClient(a.port, version=4)
    pub.connect("r1-pub")
    interest_ready(pub, [sub], "r1/t")
    pub.send(publish("r1/t", b"one replica", qos=1, pid=1))
    assert pub.expect(PUBACK, timeout=30).pid == 1
    got = sub.recv_publish(timeout=30)
    assert (got.topic, got.payload, got.qos) == ("r1/t", b"one replica", 1)
    sub.close()
    pub.close()


def test_the_receiving_node_killed_mid_stream_loses_nothing_acknowledged(stack, tmp_path):
    """QoS 1 messages flow from P to a persistent subscriber on S (persistence true), 20 in
    flight at a time; S is killed with SIGKILL in the middle and P keeps publishing (JetStream
    stores and acknowledges without S). S restarts with the same cluster_node_name and
    store: what S routed and acknowledged to JetStream is in its store, what it had not
    acknowledged JetStream delivers again, so the subscriber gets every message P
    acknowledged."""
    nats, start = stack
    conf = ["persistence true", "persistence_location %s/" % tmp_path]
    s = start("S", [nats.servers[2]], extra=conf)
    p = start("P", [nats.servers[0]])
    sub = RawClient(s.port, version=4, timeout=30)
    sub.connect("rk-sub", clean=False)
    sub.subscribe([("rk/t", 1)])
    pub = RawClient(p.port, version=4)
    pub.connect("rk-pub")
    interest_ready(pub, [sub], "rk/t")
    acked, got = set(), set()
    batches, per = 10, 20
    for bi in range(batches):
        if bi == 3:
            s.stop(check=False, sig=signal.SIGKILL)
            sub.close()
        for j in range(per):
            i = bi * per + j
            pub.send(publish("rk/t", b"m%d" % i, qos=1, pid=i + 1))
        for j in range(per):
            ack = pub.expect(PUBACK, timeout=60)
            acked.add(b"m%d" % (ack.pid - 1))
        if bi < 3:  # S is up: read what it delivered so far (acknowledging it)
            while True:
                try:
                    got.add(sub.recv_publish(timeout=0.05).payload)
                except (TimeoutError, OSError):
                    break
    assert len(acked) == batches * per
    s = start("S", [nats.servers[2]], extra=conf, port=s.port)
    sub = RawClient(s.port, version=4, timeout=30)
    assert sub.connect("rk-sub", clean=False).session_present == 1
    deadline = time.monotonic() + 60
    while not acked <= got:
        try:
            got.add(sub.recv_publish(timeout=max(0.1, deadline - time.monotonic())).payload)
        except TimeoutError:
            raise AssertionError("acknowledged but lost: %s" % sorted(acked - got))
    sub.close()
    pub.close()
