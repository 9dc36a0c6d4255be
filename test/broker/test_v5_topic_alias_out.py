"""MQTT 5.0 outbound topic aliases (broker -> client), 3.1.2.11.5 and 3.3.2.3.4.

midge assigns aliases 1..min(N, 64) to topics in order of first use on a connection, where N
is the Topic Alias Maximum of the client's CONNECT; later new topics go in full without an
alias. mosquitto 2.0.11 never sends aliases: the tests that expect one are midge_only, the
others (no alias when none is allowed) hold for both.

Outgoing aliases are opt-in (`outgoing_topic_aliases true`), because libmosquitto 2.0.11 and
paho 1.6 announce a Topic Alias Maximum but mishandle an alias sent back; the `broker` of this
module turns them on (midge only: mosquitto does not know the keyword).
"""

import queue

import pytest

import mqtt_raw as m
from harness import IS_MIDGE, assert_nothing_before_ping


@pytest.fixture
def broker(broker_factory):
    return broker_factory(extra=["outgoing_topic_aliases true"] if IS_MIDGE else [])


def sub5(raw, cid, tam=None, **kw):
    props = kw.pop("properties", [])
    if tam is not None:
        props = props + [(m.P_TOPIC_ALIAS_MAXIMUM, tam)]
    return raw(cid, version=5, properties=props, **kw)


def publisher(raw, cid="tao-pub"):
    return raw(cid, version=5)


def publish_all(p, topics):
    for i, t in enumerate(topics):
        p.publish(t, ("p%d" % i).encode(), qos=1, pid=i + 1)


def qos0_publish_bytes(topic, alias, payload):
    """The exact PUBLISH (QoS 0, no other properties) the spec fixes for topic + alias."""
    props = m.props([(m.P_TOPIC_ALIAS, alias)] if alias else [])
    return m.packet(m.PUBLISH, 0, m.s(topic) + props + payload)


@pytest.mark.threaded
@pytest.mark.midge_only
def test_alias_out_order_of_first_use_maximum_2(raw):
    """[MQTT-3.1.2-26], 3.3.2.3.4: maximum 2: a/1 -> alias 1 with its topic, then alias 1
    alone (topic length 0); a/2 -> alias 2; a/3: no alias left, so the full topic and no Topic
    Alias property. Checked byte by byte."""
    s = sub5(raw, "tao2", tam=2)
    s.subscribe([("a/#", 0)], version=5)
    p = publisher(raw)
    topics = ["a/1", "a/1", "a/2", "a/3", "a/2", "a/3", "a/1"]
    publish_all(p, topics)
    want = [("a/1", 1), ("", 1), ("a/2", 2), ("a/3", None), ("", 2), ("a/3", None), ("", 1)]
    got = s.collect(len(want))
    for i, (g, (topic, alias)) in enumerate(zip(got, want)):
        assert g.raw == qos0_publish_bytes(topic, alias, b"p%d" % i), (i, g)
    assert_nothing_before_ping(p, s)


@pytest.mark.midge_only
def test_alias_out_never_above_maximum_many_topics(raw):
    """[MQTT-3.1.2-26] With maximum 3 and ten topics, every alias sent is 1..3, each bound
    exactly once (never remapped), and an empty topic only follows its binding."""
    s = sub5(raw, "tao3", tam=3)
    s.subscribe([("b/#", 1)], version=5)
    p = publisher(raw)
    topics = ["b/%d" % (i % 10) for i in range(30)]
    publish_all(p, topics)
    got = s.collect(len(topics))
    bound = {}
    for g, t in zip(got, topics):
        alias = g.props.get(m.P_TOPIC_ALIAS)
        if alias is None:
            assert g.topic == t
            continue
        assert 1 <= alias <= 3
        if g.topic:
            assert alias not in bound, "alias %d rebound" % alias
            bound[alias] = g.topic
        assert bound.get(alias) == t
    assert bound == {1: "b/0", 2: "b/1", 3: "b/2"}


def test_alias_out_maximum_0_never(raw):
    """[MQTT-3.1.2-27] Topic Alias Maximum 0: no Topic Alias is ever sent."""
    s = sub5(raw, "tao0", tam=0)
    s.subscribe([("z/#", 0)], version=5)
    p = publisher(raw)
    topics = ["z/1", "z/1", "z/2", "z/1"]
    publish_all(p, topics)
    got = s.collect(len(topics))
    for i, (g, t) in enumerate(zip(got, topics)):
        assert g.raw == qos0_publish_bytes(t, None, b"p%d" % i)


@pytest.mark.midge_only
def test_alias_out_off_by_default(broker_factory):
    """Without `outgoing_topic_aliases true` midge sends no alias even to a client that allows
    them, as mosquitto: what a drop-in replacement owes libmosquitto and paho 1.6 clients."""
    b = broker_factory(name="plain")
    s = m.RawClient(b.port, version=5)
    s.connect("tao-off", version=5, properties=[(m.P_TOPIC_ALIAS_MAXIMUM, 10)])
    s.subscribe([("off/#", 0)], version=5)
    p = m.RawClient(b.port, version=5)
    p.connect("tao-off-pub", version=5)
    topics = ["off/1", "off/1"]
    publish_all(p, topics)
    got = s.collect(len(topics))
    for i, (g, t) in enumerate(zip(got, topics)):
        assert g.raw == qos0_publish_bytes(t, None, b"p%d" % i)
    s.close()
    p.close()


def test_alias_out_never_to_v311(raw):
    """A 3.1.1 subscriber gets the full topic every time (no properties exist there)."""
    s = raw("tao311", version=4)
    s.subscribe([("v/#", 0)])
    p = publisher(raw)
    topics = ["v/1", "v/1", "v/1"]
    publish_all(p, topics)
    got = s.collect(len(topics))
    for i, (g, t) in enumerate(zip(got, topics)):
        assert g.raw == m.packet(m.PUBLISH, 0, m.s(t) + b"p%d" % i)


@pytest.mark.threaded
@pytest.mark.midge_only
def test_alias_out_per_connection_reconnect_resends_full_topic(raw, broker):
    """Aliases belong to the network connection: after a reconnect of a persistent session,
    the DUP resend of an unacknowledged QoS 1 message carries its full topic (here with a
    fresh alias 1), and the queued message after it may then use that new alias."""
    props = [(m.P_SESSION_EXPIRY, 300)]
    s = sub5(raw, "taor", tam=2, properties=props)
    s.subscribe([("r/t", 1)], version=5)
    p = publisher(raw)
    p.publish("r/t", b"one", qos=1, pid=1)
    g1 = s.recv_publish()
    assert (g1.topic, g1.props.get(m.P_TOPIC_ALIAS), g1.payload) == ("r/t", 1, b"one")
    p.publish("r/t", b"two", qos=1, pid=2)
    g2 = s.recv_publish(ack=False)  # left unacknowledged
    assert (g2.topic, g2.props.get(m.P_TOPIC_ALIAS), g2.payload) == ("", 1, b"two")
    s.abort()
    # the broker has seen the connection go: "three" can only be queued for the session
    broker.wait_log(r"(Client taor closed its connection|Socket error on client taor)")
    p.publish("r/t", b"three", qos=1, pid=3)  # queued (or pending) for the offline session
    s2 = sub5(raw, "taor", tam=2, properties=props, clean=False)
    assert s2.connack.session_present == 1
    got = s2.collect(2)
    r, q = got
    assert r.dup and r.payload == b"two" and r.pid == g2.pid
    assert r.topic == "r/t" and r.props.get(m.P_TOPIC_ALIAS) == 1
    assert q.payload == b"three" and not q.dup
    assert q.topic == "" and q.props.get(m.P_TOPIC_ALIAS) == 1


@pytest.mark.midge_only
def test_alias_out_reconnect_without_aliases_gets_full_topics(raw):
    """A reconnect that allows no aliases gets the full topic even for a message whose first
    send used an alias."""
    props = [(m.P_SESSION_EXPIRY, 300)]
    s = sub5(raw, "taon", tam=4, properties=props)
    s.subscribe([("n/t", 1)], version=5)
    p = publisher(raw)
    p.publish("n/t", b"one", qos=1, pid=1)
    s.recv_publish()
    p.publish("n/t", b"two", qos=1, pid=2)
    g = s.recv_publish(ack=False)
    assert g.topic == "" and g.props.get(m.P_TOPIC_ALIAS) == 1
    s.abort()
    s2 = sub5(raw, "taon", properties=props, clean=False)
    r = s2.recv_publish()
    assert r.dup and r.payload == b"two"
    assert r.topic == "n/t" and r.props.get(m.P_TOPIC_ALIAS) is None


@pytest.mark.midge_only
def test_alias_out_mount_point_topic_as_client_sees_it(broker_factory):
    """The alias stands for the topic as the client sees it, without the mount point."""
    from mqtt_raw import RawClient
    from harness import free_port
    port = free_port()
    b = broker_factory(extra=["listener %d 127.0.0.1" % port, "mount_point mp/",
                              "outgoing_topic_aliases true"])
    s = RawClient(port, version=5)
    p = RawClient(port, version=5)
    try:
        s.connect("taomp", properties=[(m.P_TOPIC_ALIAS_MAXIMUM, 5)])
        s.subscribe([("k/#", 0)])
        p.connect("taomp-p")
        publish_all(p, ["k/x", "k/x"])
        got = s.collect(2)
        assert got[0].raw == qos0_publish_bytes("k/x", 1, b"p0")
        assert got[1].raw == qos0_publish_bytes("", 1, b"p1")
    finally:
        s.close()
        p.close()
    assert b.alive()


@pytest.mark.midge_only
def test_alias_out_log_shows_real_topic(raw, broker):
    """The debug log names the real topic even when an alias replaces it on the wire."""
    s = sub5(raw, "taolog", tam=2)
    s.subscribe([("lg/t", 0)], version=5)
    p = publisher(raw)
    publish_all(p, ["lg/t", "lg/t"])
    got = s.collect(2)
    assert got[1].topic == "" and got[1].props.get(m.P_TOPIC_ALIAS) == 1
    broker.wait_log(r"Sending PUBLISH to taolog \(d0, q0, r0, m0, 'lg/t', \.\.\. \(2 bytes\)\)",
                    count=2)


# ---------------------------------------------------------------- paho 1.6

def _paho_run(port, cid, properties, topics):
    import paho.mqtt.client as mqtt
    msgs = queue.Queue()
    connected = queue.Queue()
    subscribed = queue.Queue()
    c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, u, f, rc, *a: connected.put(rc)
    c.on_subscribe = lambda cl, u, mid, codes, *a: subscribed.put(codes)
    c.on_message = lambda cl, u, msg: msgs.put(msg)
    c.connect("127.0.0.1", port, 60, clean_start=True, properties=properties)
    c.loop_start()
    try:
        assert connected.get(timeout=5) == 0
        r, _ = c.subscribe("pa/#", qos=1)
        assert r == mqtt.MQTT_ERR_SUCCESS
        assert [int(x.value) for x in subscribed.get(timeout=5)] == [1]  # the SUBACK
        pub = mqtt.Client(client_id=cid + "-p", protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", port, 60)
        pub.loop_start()
        try:
            for t in topics:
                pub.publish(t, t.encode(), qos=1).wait_for_publish(5)
        finally:
            pub.disconnect()
            pub.loop_stop()
        out = []
        for _ in topics:
            out.append(msgs.get(timeout=5))
        return out
    finally:
        c.disconnect()
        c.loop_stop()


def test_alias_out_paho_without_maximum_full_topics(broker):
    """paho 1.6 (MQTTv5, no Topic Alias Maximum in CONNECT) sees every topic in full."""
    topics = ["pa/1", "pa/2", "pa/1", "pa/1"]
    got = _paho_run(broker.port, "taopaho0", None, topics)
    assert [g.topic for g in got] == topics
    assert all(not hasattr(g.properties, "TopicAlias") for g in got)


@pytest.mark.midge_only
def test_alias_out_paho_with_maximum(broker):
    """paho 1.6 with Topic Alias Maximum 10 in CONNECT: paho 1.6.1 does not resolve incoming
    aliases itself (on_message gets topic '' for an aliased PUBLISH), so the application
    must; resolving them from the Topic Alias property gives back exactly the topics sent."""
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    props = Properties(PacketTypes.CONNECT)
    props.TopicAliasMaximum = 10
    topics = ["pa/1", "pa/2", "pa/1", "pa/1", "pa/2"]
    got = _paho_run(broker.port, "taopaho10", props, topics)
    mapping, seen = {}, []
    for g in got:
        alias = getattr(g.properties, "TopicAlias", None)
        assert alias is not None and 1 <= alias <= 10
        if g.topic:
            mapping[alias] = g.topic
        seen.append(mapping[alias])
        assert g.payload == seen[-1].encode()
    assert seen == topics
    assert [g.topic for g in got] == ["pa/1", "pa/2", "", "", ""]



# ---------------------------------------------------------------- midge_sub (midge's client)

def test_alias_out_midge_sub_resolves_topics(broker, procs, raw):
    """midge_sub -V 5 -D connect topic-alias-maximum 10 (midge's client resolves incoming
    aliases) prints the full topic of every message, aliased or not. (libmosquitto 2.0.11's
    mosquitto_sub cannot take this test: it drops the connection on the first PUBLISH with an
    empty topic, although it lets the user announce a Topic Alias Maximum.)

    midge_sub is midge's own code, so the test does not take its word that aliases were
    used: a raw subscriber with the same Topic Alias Maximum gets the same messages, and its
    bytes show the aliases the broker sent (the same first-use order for both)."""
    import os
    from harness import MIDGE_BUILD
    exe = os.path.join(MIDGE_BUILD, "bin", "midge_sub")
    if not os.access(exe, os.X_OK):
        pytest.fail("midge_sub not built in %s" % MIDGE_BUILD)
    s = procs([exe, "-h", "127.0.0.1", "-p", str(broker.port), "-V", "5",
               "-D", "connect", "topic-alias-maximum", "10", "-d", "-v", "-t", "ms/#",
               "-C", "4", "-W", "10"])
    s.wait_out(r"received SUBACK")
    witness = sub5(raw, "taoms-raw", tam=10)
    witness.subscribe([("ms/#", 0)], version=5)
    p = publisher(raw, "taoms-p")
    topics = ["ms/1", "ms/1", "ms/2", "ms/1"]
    publish_all(p, topics)
    want = [("ms/1", 1), ("", 1), ("ms/2", 2), ("", 1)]
    for i, (g, (topic, alias)) in enumerate(zip(witness.collect(4), want)):
        assert g.raw == qos0_publish_bytes(topic, alias, b"p%d" % i), (i, g)
    assert s.wait(10) == 0, s.out()
    lines = [ln for ln in s.out().splitlines() if ln.startswith("ms/")]
    assert lines == ["%s p%d" % (t, i) for i, t in enumerate(topics)], s.out()
