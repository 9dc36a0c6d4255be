"""Several midge nodes as one broker over a NATS cluster (docs/cluster.md, phase 1).

One module-scoped cluster: three Debian nats-server processes routed to each other on
loopback, and three midge nodes A, B, C (threads 2), each connected to its own NATS server,
so every message between nodes crosses a NATS route. Clients are hand-built MQTT 5.0
(test/mqtt_raw.py). Each test uses topics of its own.

NATS spreads a new subscription to the other servers asynchronously, so a test first waits
until its subscriptions are in force everywhere (interest_ready: probes from the publisher's
node until each subscriber got one, then an end marker that every subscriber reads up to:
one publisher's messages arrive in order). Negative checks end on a sentinel published
after the message that must not arrive. What NATS itself holds (a node's subscriptions, how
many messages it delivered to a node) is read from nats-server's monitoring endpoint.
"""

import socket
import time

import pytest

from harness import IS_MIDGE, Broker, run_broker_until_exit
from mqtt_raw import (P_CONTENT_TYPE, P_CORRELATION_DATA, P_MESSAGE_EXPIRY, P_PAYLOAD_FORMAT,
                      P_RESPONSE_TOPIC, P_SUBSCRIPTION_ID, P_USER_PROPERTY, PUBACK, PUBLISH,
                      UNSUBACK, RawClient, publish, unsubscribe)
from ports import free_port

from cluster.nats_cluster import cluster_fixture, stop_all, clients_fixture, NatsCluster, delivered_since, node

# threaded: libnats's threads, the retained bucket's watcher and two workers per node hand
# messages to each other; the TSan pass runs this module too
pytestmark = [pytest.mark.skipif(not IS_MIDGE, reason="midge's own clustering"),
              pytest.mark.threaded]

NODES = ("A", "B", "C")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from cluster_fixture(tmp_path_factory, "cluster", extra=["sys_interval 1"])


@pytest.fixture
def clients():
    yield from clients_fixture()


def interest_ready(pub, subs, topic, timeout=20.0):
    """Publishes probes on topic from pub until every client in subs received one, then an
    end marker; reads every sub up to the marker. Afterwards the subscriptions that made
    subs receive topic are in force across the NATS cluster."""
    waiting = set(range(len(subs)))
    deadline = time.monotonic() + timeout
    while waiting:
        assert time.monotonic() < deadline, "subscriptions never reached the publisher's node"
        pub.publish(topic, b"probe")
        for i in list(waiting):
            try:
                p = subs[i].recv_publish(timeout=0.2)
            except TimeoutError:
                continue
            assert p.topic == topic and p.payload == b"probe", p
            waiting.discard(i)
    pub.publish(topic, b"end")
    for s in subs:
        while True:
            p = s.recv_publish()
            assert p.topic == topic, p
            if p.payload == b"end":
                break
            assert p.payload == b"probe", p


def test_qos0_published_on_one_node_reaches_the_others(cluster, clients):
    _, n = cluster
    pub = clients(n["A"], "q0-pub")
    sb = clients(n["B"], "q0-b")
    sc = clients(n["C"], "q0-c")
    sa = clients(n["A"], "q0-a")  # served locally, without a trip through NATS
    for s in (sa, sb, sc):
        s.subscribe([("q0/t", 0)])
    interest_ready(pub, [sa, sb, sc], "q0/t")
    for i in range(20):
        pub.publish("q0/t", b"m%d" % i)
    for s in (sa, sb, sc):
        got = s.collect(20)
        assert [p.payload for p in got] == [b"m%d" % i for i in range(20)]  # in order
        assert all(p.qos == 0 and not p.retain and p.topic == "q0/t" for p in got)


def test_qos1_across_nodes_with_the_downgrade_per_subscription(cluster, clients):
    _, n = cluster
    pub = clients(n["A"], "q1-pub")
    s1 = clients(n["B"], "q1-b1")
    s0 = clients(n["C"], "q1-c0")
    s1.subscribe([("q1/t", 1)])
    s0.subscribe([("q1/t", 0)])
    interest_ready(pub, [s1, s0], "q1/t")
    ack = pub.publish("q1/t", b"one", qos=1, pid=7)
    # nobody subscribed on A, but others may have: not 0x10 No matching subscribers
    assert ack.pid == 7 and ack.reason == 0
    p = s1.recv_publish()
    assert (p.topic, p.payload, p.qos) == ("q1/t", b"one", 1)
    p = s0.recv_publish()
    assert (p.topic, p.payload, p.qos) == ("q1/t", b"one", 0)
    # QoS 2 from the publisher: delivered at QoS 1 to a QoS 1 subscription
    pub.publish("q1/t", b"two", qos=2, pid=8)
    p = s1.recv_publish()
    assert (p.payload, p.qos) == (b"two", 1)
    assert s0.recv_publish().payload == b"two"


def test_wildcards_and_levels_needing_escapes(cluster, clients):
    _, n = cluster
    pub = clients(n["A"], "w-pub")
    plus = clients(n["B"], "w-plus")
    hash_ = clients(n["C"], "w-hash")
    plus.subscribe([("w/+/x", 0)])
    hash_.subscribe([("w/#", 0)])
    interest_ready(pub, [plus, hash_], "w/probe/x")
    topics = ["w", "w/a/x", "w/a", "w/a.b/x", "w//x", "w/*/x", "w/>/x", "w/%2E/x", "w/a b/x",
              "w/a/x/y", "w/a/y"]
    for t in topics:
        pub.publish(t, t.encode())
    pub.publish("w/end/x", b"end")
    want_plus = [t for t in topics if len(t.split("/")) == 3 and t.split("/")[2] == "x"]
    got = plus.collect(len(want_plus) + 1)
    assert [(p.topic, p.payload) for p in got] == [(t, t.encode()) for t in want_plus] + \
        [("w/end/x", b"end")]
    got = hash_.collect(len(topics) + 1)  # "w/#" matches "w" too (the parent level)
    assert [p.topic for p in got] == topics + ["w/end/x"]


def test_dollar_topics_cross_but_not_to_leading_wildcards(cluster, clients):
    """A $ topic reaches "$app/#" on C, and not "#" on B: not by B's own matching only, NATS
    does not even send it to B ("#" is mqtt.>, $ topics live under mqtt$.)."""
    nats, n = cluster
    pub = clients(n["A"], "d-pub")
    every = clients(n["B"], "d-every")
    dollar = clients(n["C"], "d-dollar")
    every.subscribe([("#", 0)])
    dollar.subscribe([("$app/#", 0), ("d/sentinel", 0)])
    interest_ready(pub, [dollar], "$app/probe")
    interest_ready(pub, [every, dollar], "d/sentinel")
    before = nats.servers[1].mqtt_msgs("B")
    pub.publish("$app/1", b"dollar")
    pub.publish("d/sentinel", b"after")
    p = dollar.recv_publish()
    assert (p.topic, p.payload) == ("$app/1", b"dollar")
    assert dollar.recv_publish().payload == b"after"
    # "#" never matches a $ topic [MQTT-4.7.2-1]: the next thing it gets is the sentinel
    while True:
        p = every.recv_publish()
        if p.topic == "d/sentinel":
            break
        assert not p.topic.startswith("$"), p
    assert p.payload == b"after"
    assert delivered_since(before, nats.servers[1].mqtt_msgs("B")) == 1  # the sentinel only


def test_overlapping_subscriptions_on_one_node_get_one_copy_each(cluster, clients):
    """Node B holds "o/+" and "o/#" (two NATS subscriptions that both match "o/t"): NATS
    delivers the message to B twice, B routes it once."""
    _, n = cluster
    pub = clients(n["C"], "o-pub")
    s1 = clients(n["B"], "o-plus")
    s2 = clients(n["B"], "o-hash")
    s3 = clients(n["B"], "o-both")
    s1.subscribe([("o/+", 0)])
    s2.subscribe([("o/#", 0)])
    s3.subscribe([("o/+", 0), ("o/#", 0)])
    interest_ready(pub, [s1, s2, s3], "o/t")
    for i in range(5):
        pub.publish("o/t", b"x%d" % i)
    pub.publish("o/end", b"end")
    for s in (s1, s2, s3):
        got = s.collect(6)
        assert [p.payload for p in got] == [b"x%d" % i for i in range(5)] + [b"end"]


def test_no_local_and_the_5_0_properties_cross_intact(cluster, clients):
    _, n = cluster
    me = clients(n["A"], "nl-me")
    far = clients(n["B"], "nl-far")
    me.subscribe([("nl/t", 0x05)])  # QoS 1, No Local
    far.subscribe([("nl/t", 1)], properties=[(P_SUBSCRIPTION_ID, 42)])
    interest_ready(me, [far], "nl/t")
    props = [(P_PAYLOAD_FORMAT, 1), (P_MESSAGE_EXPIRY, 300), (P_CONTENT_TYPE, "text/plain"),
             (P_RESPONSE_TOPIC, "nl/reply"), (P_CORRELATION_DATA, b"\x00\x01corr"),
             (P_USER_PROPERTY, ("k", "v")), (P_USER_PROPERTY, ("k", "v2"))]
    me.publish("nl/t", b"hello", qos=1, pid=3, properties=props)
    p = far.recv_publish()
    assert (p.topic, p.payload, p.qos) == ("nl/t", b"hello", 1)
    assert p.props.get(P_PAYLOAD_FORMAT) == 1
    assert p.props.get(P_CONTENT_TYPE) == "text/plain"
    assert p.props.get(P_RESPONSE_TOPIC) == "nl/reply"
    assert p.props.get(P_CORRELATION_DATA) == b"\x00\x01corr"
    assert p.props.all(P_USER_PROPERTY) == [("k", "v"), ("k", "v2")]  # order kept
    assert p.props.all(P_SUBSCRIPTION_ID) == [42]  # the receiving node's subscription
    assert 0 < p.props.get(P_MESSAGE_EXPIRY) <= 300  # time spent is taken off
    # No Local: the publisher never gets its own message back, from any node; a message from
    # another client arrives (and shows the publisher's connection is alive and subscribed)
    other = clients(n["C"], "nl-other")
    other.publish("nl/t", b"from-other", qos=1, pid=4)
    p = me.recv_publish()
    assert (p.topic, p.payload) == ("nl/t", b"from-other")


def test_retain_flag_across_nodes_follows_retain_as_published(cluster, clients):
    _, n = cluster
    pub = clients(n["A"], "r-pub")
    plain = clients(n["B"], "r-plain")
    rap = clients(n["C"], "r-rap")
    plain.subscribe([("r/t", 0)])
    rap.subscribe([("r/t", 0x08)])  # Retain As Published
    interest_ready(pub, [plain, rap], "r/t")
    pub.publish("r/t", b"kept", retain=True)
    p = plain.recv_publish()
    assert (p.payload, p.retain) == (b"kept", False)
    p = rap.recv_publish()
    assert (p.payload, p.retain) == (b"kept", True)
    pub.publish("r/t", b"", retain=True)  # clears A's retained message: still delivered
    assert plain.recv_publish().payload == b""
    assert rap.recv_publish().payload == b""


def test_a_node_holds_one_nats_subscription_per_filter_and_drops_it_with_the_last(cluster,
                                                                                   clients):
    """Two clients of B on "u/#": B holds "u.>" and "u" once on NATS; the first UNSUBSCRIBE
    keeps them, the second removes them, and NATS then delivers nothing more on "u/..." to
    B (counted by nats-server itself)."""
    nats, n = cluster
    srv_b = nats.servers[1]
    pub = clients(n["A"], "u-pub")
    c1 = clients(n["B"], "u-1")
    c2 = clients(n["B"], "u-2")
    keep = clients(n["B"], "u-keep")
    c1.subscribe([("u/#", 0)])
    c2.subscribe([("u/#", 0)])
    keep.subscribe([("u2/sentinel", 0)])
    interest_ready(pub, [c1, c2], "u/t")
    interest_ready(pub, [keep], "u2/sentinel")

    def subs_of_b():
        return sorted(srv_b.connection("B").get("subscriptions_list") or [])

    def wait_subs(pred, what):
        deadline = time.monotonic() + 20
        while not pred(subs_of_b()):
            assert time.monotonic() < deadline, "%s: %r" % (what, subs_of_b())
            time.sleep(0.05)

    assert subs_of_b().count("mqtt.u.>") == 1 and subs_of_b().count("mqtt.u") == 1
    c1.send(unsubscribe(9, ["u/#"], version=5))
    assert c1.expect(UNSUBACK).codes == [0]
    # the sentinel round trip puts the UNSUBSCRIBE's effect on NATS (if any) behind us
    pub.publish("u2/sentinel", b"s1")
    assert keep.recv_publish().payload == b"s1"
    assert subs_of_b().count("mqtt.u.>") == 1 and subs_of_b().count("mqtt.u") == 1
    c2.send(unsubscribe(9, ["u/#"], version=5))
    assert c2.expect(UNSUBACK).codes == [0]
    wait_subs(lambda s: "mqtt.u.>" not in s and "mqtt.u" not in s, "B still holds u/#")
    assert "mqtt.u2.sentinel" in subs_of_b()
    before = srv_b.mqtt_msgs("B")
    for i in range(10):
        pub.publish("u/t", b"unwanted")
    pub.publish("u2/sentinel", b"s2")
    assert keep.recv_publish().payload == b"s2"
    got = delivered_since(before, srv_b.mqtt_msgs("B"))
    assert got == 1, "NATS delivered %d messages to B, only the sentinel was due" % got


def test_a_node_that_cannot_reach_nats_does_not_start(tmp_path):
    port = free_port()
    dead = free_port()  # claimed, nothing listens there
    rc, out = run_broker_until_exit(
        tmp_path, "listener %d 127.0.0.1\nallow_anonymous true\n"
        "cluster_nats_url nats://127.0.0.1:%d\n" % (port, dead), timeout=30)
    assert rc == 1, out
    assert "cannot connect to NATS at nats://127.0.0.1:%d" % dead in out
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_cluster_url_must_be_a_nats_url(tmp_path):
    rc, out = run_broker_until_exit(tmp_path, "cluster_nats_url 127.0.0.1:4222\n")
    assert rc == 3, out
    assert "exit.conf:1: invalid URL '127.0.0.1:4222' for 'cluster_nats_url'" in out


def retained_on(client, topic):
    """A function that subscribes client to topic and returns the retained message it gets
    after the SUBACK (None: none, known when PINGRESP comes first), and unsubscribes.
    Messages published meanwhile arrive too, with the retain flag clear (no Retain As
    Published): they are skipped."""
    from mqtt_raw import PINGRESP, SUBACK, pingreq, subscribe

    def once():
        # a message routed to the previous round's subscription before its UNSUBSCRIBE (a
        # remote one waits in a worker's inbox) may still come: live, retain flag clear
        client.send(subscribe(5, [(topic, 0)], version=5))
        while True:
            p = client.recv()
            if p.type == SUBACK:
                break
            assert p.type == PUBLISH and not p.retain, p
        client.send(pingreq())
        got = None
        while True:
            p = client.recv()
            if p.type == PINGRESP:
                break
            assert p.type == PUBLISH, p
            if p.retain and got is None:
                got = p
        client.send(unsubscribe(6, [topic], version=5))
        while True:
            p = client.recv()
            if p.type == UNSUBACK:
                return got
            assert p.type == PUBLISH and not p.retain, p
    return once


def wait_retained(client, topic, want, timeout=20.0):
    """Polls until the retained message on topic, as seen from client's node, has payload
    want (None: no retained message). Returns the last PUBLISH seen (or None)."""
    poll = retained_on(client, topic)
    deadline = time.monotonic() + timeout
    while True:
        got = poll()
        if (got.payload if got else None) == want:
            return got
        assert time.monotonic() < deadline, "retained on %s never became %r (is %r)" % (
            topic, want, got.payload if got else None)
        time.sleep(0.05)


def test_a_retained_message_set_on_one_node_is_served_on_the_others(cluster, clients):
    """Retained messages live in the JetStream bucket MQTT_RETAIN: set on A, C serves it to a
    new subscriber (retain flag set); cleared on A (empty payload), C serves none."""
    _, n = cluster
    pub = clients(n["A"], "rk-pub")
    c = clients(n["C"], "rk-c")
    pub.publish("rk/t", b"kept on A", qos=1, retain=True)
    got = wait_retained(c, "rk/t", b"kept on A")
    assert got.retain and got.topic == "rk/t"
    pub.publish("rk/t", b"", qos=1, retain=True)
    assert wait_retained(c, "rk/t", None) is None


def test_a_node_that_starts_later_has_the_retained_messages_at_once(cluster, clients, tmp_path):
    """A node loads the bucket before it takes clients: its first subscriber gets what A
    retained, with no waiting."""
    nats, n = cluster
    pub = clients(n["A"], "late-pub")
    b = clients(n["B"], "late-b")
    pub.publish("late/t", b"before D", qos=1, retain=True)
    wait_retained(b, "late/t", b"before D")  # it is in the bucket
    d = node(tmp_path, nats.servers[2], "D")
    try:
        sub = clients(d, "late-d")
        sub.subscribe([("late/#", 1)])
        p = sub.recv_publish()
        assert (p.topic, p.payload, p.retain) == ("late/t", b"before D", True)
        d.wait_log(r"Cluster node D: retained messages in bucket MQTT_RETAIN: \d+ loaded\.")
        # -v names the nodes as they come and go, on both sides
        for x in NODES:
            n[x].wait_log(r"Cluster node D joined\.")
            d.wait_log(r"Cluster node %s is in the cluster\." % x)
    finally:
        d.stop()
    for x in NODES:
        n[x].wait_log(r"Cluster node D left\.")


def test_a_nats_server_dies_and_its_node_carries_on_through_another(tmp_path, clients):
    """Node B knows two NATS servers; the one it is connected to is killed (SIGKILL): B
    reconnects to the other (libnats), subscribes again, and messages from A flow as
    before. A cluster of its own: the module's stays whole."""
    nats = NatsCluster(tmp_path, 3)
    nodes = []
    try:
        a = node(tmp_path, nats.servers[0], "A")
        nodes.append(a)
        b = Broker(tmp_path, threads=2, name="B", extra=[
            "cluster_nats_url %s,%s" % (nats.servers[1].url, nats.servers[2].url),
            "cluster_node_name B"])
        nodes.append(b)
        pub = clients(a, "f-pub")
        sub = clients(b, "f-sub")
        sub.subscribe([("f/#", 1)])
        interest_ready(pub, [sub], "f/t")
        mine = [s for s in nats.servers[1:] if s.connection("B")]
        assert len(mine) == 1
        mine[0].proc.kill()
        mine[0].proc.wait(timeout=10)
        b.wait_log(r"Cluster node B lost its NATS server; reconnecting", timeout=20)
        b.wait_log(r"Cluster node B reconnected to NATS at ", timeout=20)
        interest_ready(pub, [sub], "f/t")
        for i in range(10):
            # the PUBACK waits until JetStream stored it: seconds while the stream, which
            # had a replica on the dead server, elects a leader (docs/cluster.md)
            pub.send(publish("f/t", b"after %d" % i, qos=1, pid=i + 1, version=5))
            assert pub.expect(PUBACK, timeout=60).pid == i + 1
        got = sub.collect(10, timeout=30)
        assert [p.payload for p in got] == [b"after %d" % i for i in range(10)]
    finally:
        stop_all(nodes, nats)


def sys_values(client, want, timeout=20.0):
    """Reads $SYS/broker/cluster/# on client until want(values) holds; values maps the
    topic after "cluster/" to its payload. $SYS is published every second (sys_interval 1)."""
    client.subscribe([("$SYS/broker/cluster/#", 0)], pid=3)
    values = {}
    deadline = time.monotonic() + timeout
    keys = ("node", "connected", "subscriptions", "messages/sent", "messages/received",
            "messages/duplicates", "messages/dropped", "messages/invalid", "retained/put",
            "retained/applied")
    while not (want(values) and all(k in values for k in keys)):
        assert time.monotonic() < deadline, "$SYS/broker/cluster never showed it: %r" % values
        p = client.recv_publish(timeout=5)
        values[p.topic.split("/cluster/", 1)[1]] = p.payload.decode()
    return values


def test_sys_topics_show_each_node_and_its_cluster_traffic(cluster, clients):
    _, n = cluster
    pub = clients(n["A"], "sys-pub")
    sub = clients(n["B"], "sys-sub")
    sub.subscribe([("sys/t", 0)])
    interest_ready(pub, [sub], "sys/t")  # a probe and the end marker at least: 2 messages

    def num(v, k):
        return int(v.get(k, "-1"))
    v = sys_values(clients(n["B"], "sys-mon-b"), lambda v: num(v, "messages/received") >= 2
                   and num(v, "subscriptions") >= 1)
    assert v["node"] == "B" and v["connected"] == "1"
    assert num(v, "messages/invalid") == 0
    v = sys_values(clients(n["A"], "sys-mon-a"), lambda v: num(v, "messages/sent") >= 2)
    assert v["node"] == "A" and v["connected"] == "1"


def test_only_the_broker_links_libnats():
    """libnats is linked into midge alone (Makefile: broker/cluster.c is outside
    libmgbroker.a): the tools, libmidge and the examples do not load it."""
    import glob
    import os
    import subprocess
    from harness import MIDGE_BIN, MIDGE_BUILD

    def needs_nats(path):
        out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        return "libnats" in out
    assert needs_nats(MIDGE_BIN)
    others = [p for p in glob.glob(os.path.join(MIDGE_BUILD, "bin", "*"))
              + glob.glob(os.path.join(MIDGE_BUILD, "bin", "examples", "*"))
              + glob.glob(os.path.join(MIDGE_BUILD, "lib", "*.so"))
              if os.path.isfile(p) and os.access(p, os.X_OK) and p != MIDGE_BIN]
    assert len(others) >= 5, others
    assert [p for p in others if needs_nats(p)] == []


def test_a_restarted_node_subscribes_on_nats_for_its_stored_sessions(cluster, clients,
                                                                      tmp_path):
    """A persistent session's subscription survives a restart of its node (persistence
    true): the node subscribes on NATS for it at start, before any client connects, so a
    message published on A while the client is still away is queued for it."""
    nats, n = cluster
    srv = nats.servers[2]
    conf = ["persistence true", "persistence_location %s/" % tmp_path]
    p = node(tmp_path, srv, "P", extra=conf)
    try:
        c = RawClient(p.port, version=4)
        c.connect("ps-client", clean=False)
        c.subscribe([("ps/t", 1)])
        c.disconnect()
        port = p.port
        p.stop()
        p = Broker(tmp_path, threads=2, name="P", port=port, extra=[
            "cluster_nats_url %s" % srv.url, "cluster_node_name P"] + conf)
        p.wait_log(r"Cluster node P \(id \w+\) connected to NATS at \S+; 1 filters subscribed\.")
        # a sync point, not a sleep: A's NATS server has P's interest once its route says so
        deadline = time.monotonic() + 20
        while not any("mqtt.ps.t" in (r.get("subscriptions_list") or [])
                      for r in nats.servers[0].get("/routez?subs=1").get("routes") or []):
            assert time.monotonic() < deadline, "P's restored interest never reached A's server"
            time.sleep(0.05)
        pub = clients(n["A"], "ps-pub")
        pub.publish("ps/t", b"while away", qos=1, pid=1)
        # PUBACK came after A handed it to NATS; P queues it for the offline session
        c = RawClient(p.port, version=4)
        assert c.connect("ps-client", clean=False).session_present == 1
        got = c.recv_publish()
        assert (got.topic, got.payload, got.qos) == ("ps/t", b"while away", 1)
        c.close()
    finally:
        p.stop()
