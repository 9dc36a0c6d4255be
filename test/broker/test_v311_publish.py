"""MQTT 3.1.1 PUBLISH, QoS flows, sessions, subscriptions and retained messages."""

import re
import time

import pytest

import mqtt_raw as m
from harness import IS_MIDGE, assert_nothing_before_ping


# ---------------------------------------------------------------- QoS flows, exact bytes

def test_MQTT_4_3_2_2_qos1_puback_bytes(raw):
    """[MQTT-4.3.2-2] / [MQTT-3.4] QoS 1 PUBLISH pid 7 -> PUBACK 40 02 00 07."""
    c = raw("q1")
    c.send(m.publish("q/1", b"x", qos=1, pid=7))
    assert c.recv().raw == b"\x40\x02\x00\x07"


def test_MQTT_4_3_3_2_qos2_pubrec_pubrel_pubcomp_bytes(raw):
    """[MQTT-4.3.3-2] QoS 2: PUBREC 50 02 00 09; PUBREL 62 02 00 09 -> PUBCOMP 70 02 00 09."""
    c = raw("q2")
    c.send(m.publish("q/2", b"x", qos=2, pid=9))
    assert c.recv().raw == b"\x50\x02\x00\x09"
    c.send(b"\x62\x02\x00\x09")
    assert c.recv().raw == b"\x70\x02\x00\x09"


@pytest.mark.threaded
def test_MQTT_4_3_3_2_qos2_exactly_once_duplicate_before_pubrel(raw):
    """[MQTT-4.3.3-2] Method B: a duplicate PUBLISH with the same id before PUBREL is not
    delivered again."""
    s = raw("eo-sub")
    s.subscribe([("eo/t", 2)])
    c = raw("eo-pub")
    c.send(m.publish("eo/t", b"once", qos=2, pid=42))
    assert c.recv().raw == b"\x50\x02\x00\x2a"
    c.send(m.publish("eo/t", b"once", qos=2, pid=42, dup=True))
    assert c.recv().raw == b"\x50\x02\x00\x2a"
    c.send(m.pubrel(42))
    assert c.recv().raw == b"\x70\x02\x00\x2a"
    p = s.recv_publish()
    assert p.payload == b"once"
    assert_nothing_before_ping(c, s)


def test_MQTT_4_3_3_2_pid_reusable_after_pubcomp(raw):
    s = raw("ru-sub")
    s.subscribe([("ru/t", 0)])
    c = raw("ru-pub")
    for i in range(3):
        c.publish("ru/t", b"n%d" % i, qos=2, pid=5)
    assert [s.recv_publish().payload for _ in range(3)] == [b"n0", b"n1", b"n2"]


def test_MQTT_4_3_2_puback_sent_without_subscribers(raw):
    c = raw("nosub")
    assert c.publish("nobody/listens", b"x", qos=1, pid=300).raw == b"\x40\x02\x01\x2c"


@pytest.mark.parametrize("pub_qos", [0, 1, 2])
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_MQTT_3_8_4_6_delivered_qos_is_minimum(raw, pub_qos, sub_qos):
    """[MQTT-3.8.4-6] / 3.3.5: delivered QoS = min(published QoS, granted QoS)."""
    s = raw("min-sub")
    ack = s.subscribe([("min/t", sub_qos)], pid=11)
    assert ack.raw == bytes([0x90, 0x03, 0x00, 0x0b, sub_qos])
    c = raw("min-pub")
    c.publish("min/t", b"v", qos=pub_qos, pid=2)
    p = s.recv_publish()
    assert p.qos == min(pub_qos, sub_qos)
    if p.qos:
        assert p.pid != 0  # [MQTT-2.3.1-1]
    assert not p.dup  # [MQTT-3.3.1-3] first delivery


def test_outbound_qos2_flow_bytes(raw):
    """Server as sender of QoS 2: PUBLISH q2 -> client PUBREC -> server PUBREL 62 02 id id ->
    client PUBCOMP; nothing more after."""
    s = raw("oq2")
    s.subscribe([("oq2/t", 2)])
    raw("oq2-pub").publish("oq2/t", b"abc", qos=2)
    p = s.expect(m.PUBLISH)
    assert p.raw[0] == 0x34 and p.payload == b"abc"
    s.send(m.pubrec(p.pid))
    rel = s.recv()
    assert rel.raw == b"\x62\x02" + p.pid.to_bytes(2, "big")
    s.send(m.pubcomp(p.pid))
    assert_nothing_before_ping(s)


@pytest.mark.threaded
def test_MQTT_4_6_0_ordering_qos1(raw):
    """[MQTT-4.6.0-6] Messages on one topic from one publisher are delivered in order."""
    s = raw("ord-sub")
    s.subscribe([("ord/t", 1)])
    c = raw("ord-pub")
    for i in range(30):
        c.send(m.publish("ord/t", b"%d" % i, qos=1, pid=i + 1))
    acks = [c.expect(m.PUBACK).pid for _ in range(30)]
    assert acks == list(range(1, 31))  # [MQTT-4.6.0-2] PUBACKs in order
    got = [int(s.recv_publish().payload) for _ in range(30)]
    assert got == list(range(30))


def test_MQTT_2_3_1_2_distinct_pids_for_inflight(raw):
    """[MQTT-2.3.1-2] Unacknowledged QoS 1 messages to one client have distinct ids."""
    s = raw("pid-sub")
    s.subscribe([("pid/t", 1)])
    c = raw("pid-pub")
    for i in range(5):
        c.publish("pid/t", b"%d" % i, qos=1, pid=1)
    ps = [s.recv_publish(ack=False) for _ in range(5)]
    ids = [p.pid for p in ps]
    assert len(set(ids)) == 5 and 0 not in ids


# ---------------------------------------------------------------- persistent sessions

@pytest.mark.threaded
def test_MQTT_3_1_2_5_offline_queueing_and_redelivery(raw):
    """[MQTT-3.1.2-4/5] A persistent session keeps subscriptions and queues QoS 1 and 2
    messages while disconnected; they arrive on reconnect, in order per QoS."""
    c = raw("off", clean=False)
    c.subscribe([("off/t", 2)])
    c.disconnect()
    p = raw("off-pub")
    for i in range(4):
        p.publish("off/t", b"a%d" % i, qos=1, pid=i + 1)
    for i in range(4):
        p.publish("off/t", b"b%d" % i, qos=2, pid=i + 10)
    c = raw()
    c.send(m.connect("off", clean=False))
    assert c.recv().raw == b"\x20\x02\x01\x00"
    got = c.collect(8)
    q1 = [g.payload for g in got if g.qos == 1]
    q2 = [g.payload for g in got if g.qos == 2]
    assert q1 == [b"a%d" % i for i in range(4)]
    assert q2 == [b"b%d" % i for i in range(4)]
    assert_nothing_before_ping(c)


@pytest.mark.threaded
def test_MQTT_4_4_0_1_unacked_qos1_resent_with_dup(raw, broker):
    """[MQTT-4.4.0-1] On reconnect with CleanSession 0, unacknowledged PUBLISH packets are
    resent with their original ids and DUP 1 [MQTT-3.3.1-1]."""
    c = raw("dup1", clean=False)
    c.subscribe([("dup/t", 1)])
    raw("dup-pub").publish("dup/t", b"again", qos=1)
    first = c.recv_publish(ack=False)
    assert not first.dup
    c.close()
    _wait_closed_seen(broker, "dup1")
    c = raw()
    c.send(m.connect("dup1", clean=False))
    assert c.recv().raw == b"\x20\x02\x01\x00"
    again = c.expect(m.PUBLISH)
    assert again.dup and again.pid == first.pid and again.payload == b"again"
    assert again.raw[0] == 0x3a
    c.send(m.puback(again.pid))
    assert_nothing_before_ping(c)


def test_MQTT_4_4_0_1_unacked_pubrel_resent(raw, broker):
    """[MQTT-4.4.0-1] A QoS 2 outbound message PUBRECed but not PUBCOMPed: the PUBREL is
    resent on reconnect, and the PUBLISH is not."""
    c = raw("rel", clean=False)
    c.subscribe([("rel/t", 2)])
    raw("rel-pub").publish("rel/t", b"q2", qos=2)
    p = c.expect(m.PUBLISH)
    c.send(m.pubrec(p.pid))
    c.expect(m.PUBREL)
    c.close()
    _wait_closed_seen(broker, "rel")
    c = raw()
    c.send(m.connect("rel", clean=False))
    assert c.recv().raw == b"\x20\x02\x01\x00"
    assert c.recv().raw == b"\x62\x02" + p.pid.to_bytes(2, "big")
    c.send(m.pubcomp(p.pid))
    assert_nothing_before_ping(c)


def test_inbound_qos2_state_survives_reconnect(raw, broker):
    """A QoS 2 PUBLISH PUBRECed by the server, then the client reconnects (CleanSession 0)
    and sends the PUBREL: PUBCOMP comes back, and the message is delivered exactly once."""
    s = raw("in2-sub")
    s.subscribe([("in2/t", 2)])
    c = raw("in2", clean=False)
    c.send(m.publish("in2/t", b"once", qos=2, pid=77))
    assert c.recv().raw == b"\x50\x02\x00\x4d"
    c.close()
    _wait_closed_seen(broker, "in2")
    c = raw()
    c.send(m.connect("in2", clean=False))
    assert c.recv().raw == b"\x20\x02\x01\x00"
    c.send(m.publish("in2/t", b"once", qos=2, pid=77, dup=True))
    assert c.recv().raw == b"\x50\x02\x00\x4d"
    c.send(m.pubrel(77))
    assert c.recv().raw == b"\x70\x02\x00\x4d"
    assert s.recv_publish().payload == b"once"
    assert_nothing_before_ping(c, s)


# ---------------------------------------------------------------- subscriptions

def test_MQTT_3_8_4_suback_bytes(raw):
    """[MQTT-3.8.4-1/5] SUBACK with the SUBSCRIBE's id and one return code per filter."""
    c = raw("sa")
    c.send(m.subscribe(0x1234, [("a/b", 0), ("c/+", 1), ("d/#", 2)]))
    assert c.recv().raw == b"\x90\x05\x12\x34\x00\x01\x02"


@pytest.mark.parametrize("bad", ["a/#/b", "a#", "a/b+", "+a/b"])
def test_MQTT_4_7_1_bad_filter_failure_or_close(raw, broker, bad):
    """[MQTT-4.7.1-2/3] '#' last and alone, '+' alone in its level. A bad filter gets
    return code 0x80 ([MQTT-3.9.3] Failure) or the connection is closed; a good filter in the
    same SUBSCRIBE is unaffected when a SUBACK comes."""
    c = raw("bf")
    c.send(m.subscribe(5, [("ok/t", 1), (bad, 1)]))
    if IS_MIDGE:  # midge closes (3.1.1 has no way to say why), as mosquitto does
        assert c.expect_closed(allow_disconnect=False) == []
        return
    try:
        p = c.recv()
    except m.Closed:
        return
    assert p.raw == b"\x90\x04\x00\x05\x01\x80"
    raw("bf-pub").publish("ok/t", b"x", qos=1)
    assert c.recv_publish().payload == b"x"


def _wait_closed_seen(broker, cid):
    """Waits until the broker has logged the client's close, so the reconnect that follows
    resumes a session whose connection is gone (not a takeover of a live one)."""
    broker.wait_log(r"Client %s closed its connection" % re.escape(cid))


MATCH_CASES = [
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/#", "sport", True),  # [MQTT-4.7.1-2] parent level
    ("sport/#", "sport/tennis/player1", True),
    ("#", "a/b/c", True),
    ("+", "sport", True),
    ("+", "sport/", False),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("sport/+/player1", "sport//player1", True),
    ("a/b", "a/b/", False),
    ("A/B", "a/b", False),  # case sensitive
    ("#", "$test/broker/x", False),  # [MQTT-4.7.2-1]
    ("+/broker/x", "$test/broker/x", False),
    ("$test/#", "$test/broker/x", True),
]


@pytest.mark.parametrize("flt,topic,match", MATCH_CASES)
def test_MQTT_4_7_topic_matching(raw, flt, topic, match):
    """[MQTT-4.7.1-1..3], [MQTT-4.7.2-1] wildcard matching, $-topics not matched by a
    leading wildcard."""
    s = raw("match")
    s.subscribe([(flt, 0)])
    p = raw("matchpub")
    p.send(m.publish(topic, b"m"))
    p.send(m.pingreq())
    p.expect(m.PINGRESP)
    if match:
        got = s.recv_publish()
        assert got.topic == topic
    else:
        assert_nothing_before_ping(p, s)


def test_dollar_topic_published_by_client_matches_explicit_filter(raw):
    """[MQTT-4.7.2-1] '#' does not match '$x/...', an explicit '$x/#' does."""
    a = raw("dol-a")
    a.subscribe(["#"])
    b = raw("dol-b")
    b.subscribe(["$x/#"])
    p = raw("dol-pub")
    p.publish("$x/y", b"d", qos=1)
    assert b.recv_publish().topic == "$x/y"
    assert_nothing_before_ping(p, a)


@pytest.mark.mosquitto_xfail("delivers once at the QoS of one matching subscription, "
                             "not the maximum")
def test_MQTT_3_3_5_1_overlapping_subscriptions_max_qos(raw):
    """[MQTT-3.3.5-1] Overlapping subscriptions: the message is delivered respecting the
    maximum QoS of the matching subscriptions."""
    s = raw("ov")
    s.subscribe([("ov/+", 0), ("ov/#", 2), ("ov/t", 1)])
    raw("ov-pub").publish("ov/t", b"o", qos=2)
    got = [s.recv_publish()]
    try:
        while True:
            got.append(s.recv_publish(timeout=0.4))
    except TimeoutError:
        pass
    assert all(g.payload == b"o" for g in got)
    assert max(g.qos for g in got) == 2
    assert len(got) <= 3


def test_MQTT_3_8_4_3_resubscribe_replaces(raw):
    """[MQTT-3.8.4-3] A SUBSCRIBE with an existing filter replaces it (new QoS), and the
    message is delivered once."""
    s = raw("rs")
    s.subscribe([("rs/t", 0)])
    s.subscribe([("rs/t", 1)], pid=2)
    raw("rs-pub").publish("rs/t", b"r", qos=1)
    p = s.recv_publish()
    assert p.qos == 1
    assert_nothing_before_ping(s)


def test_MQTT_3_10_4_unsubscribe(raw):
    """[MQTT-3.10.4-1] Unsubscribed: no more deliveries. [MQTT-3.10.4-4/5] UNSUBACK b0 02
    with the id, also for a filter that did not exist."""
    s = raw("us")
    s.subscribe([("us/t", 0)])
    s.send(m.unsubscribe(0x0102, ["us/t"]))
    assert s.recv().raw == b"\xb0\x02\x01\x02"
    raw("us-pub").publish("us/t", b"x", qos=1)
    assert_nothing_before_ping(s)
    s.send(m.unsubscribe(7, ["never/subscribed"]))
    assert s.recv().raw == b"\xb0\x02\x00\x07"


# ---------------------------------------------------------------- retained messages

def test_MQTT_3_3_1_5_6_8_retained_stored_and_sent_with_retain_flag(raw):
    """[MQTT-3.3.1-5] stored; [MQTT-3.3.1-6] sent on new subscription; [MQTT-3.3.1-8] with
    RETAIN 1. Exact bytes of the delivery at QoS 0."""
    raw("rp").publish("ret/t", b"val", qos=1, retain=True)
    s = raw("rs1")
    s.send(m.subscribe(1, [("ret/t", 0)]))
    assert s.recv().raw == b"\x90\x03\x00\x01\x00"
    assert s.recv().raw == b"\x31\x0a\x00\x05ret/tval"


def test_MQTT_3_3_1_9_live_delivery_retain_flag_zero(raw):
    """[MQTT-3.3.1-9] A message forwarded to an established subscription has RETAIN 0."""
    s = raw("live")
    s.subscribe([("lv/t", 0)])
    raw("lvp").publish("lv/t", b"x", qos=1, retain=True)
    assert s.recv().raw == b"\x30\x07\x00\x04lv/tx"


def test_MQTT_3_3_1_7_retained_replaced(raw):
    p = raw("rep")
    p.publish("rep/t", b"one", qos=1, retain=True)
    p.publish("rep/t", b"two", qos=1, retain=True)
    s = raw("rep-s")
    s.subscribe([("rep/t", 1)])
    got = s.recv_publish()
    assert (got.payload, got.retain, got.qos) == (b"two", True, 1)
    assert_nothing_before_ping(s)


def test_MQTT_3_3_1_10_11_empty_retained_deletes(raw):
    """[MQTT-3.3.1-10] A zero-byte retained PUBLISH removes the retained message;
    [MQTT-3.3.1-11] and is not itself stored."""
    p = raw("del")
    p.publish("del/t", b"x", qos=1, retain=True)
    p.publish("del/t", b"", qos=1, retain=True)
    s = raw("del-s")
    s.subscribe([("del/t", 1)])
    assert_nothing_before_ping(s)


def test_MQTT_3_3_1_12_non_retained_does_not_replace(raw):
    """[MQTT-3.3.1-12] RETAIN 0: the retained message is neither stored nor replaced."""
    p = raw("nr")
    p.publish("nr/t", b"kept", qos=1, retain=True)
    p.publish("nr/t", b"transient", qos=1, retain=False)
    s = raw("nr-s")
    s.subscribe([("nr/t", 1)])
    assert s.recv_publish().payload == b"kept"


def test_retained_matched_by_wildcards(raw):
    p = raw("rw")
    for t in ("rw/a", "rw/b/c", "rw2/x"):
        p.publish(t, t.encode(), qos=1, retain=True)
    s = raw("rw-s")
    s.subscribe([("rw/#", 0)])
    got = sorted(s.recv_publish().topic for _ in range(2))
    assert got == ["rw/a", "rw/b/c"]
    assert_nothing_before_ping(s)


def test_MQTT_3_3_1_3_outgoing_dup_independent_of_incoming(raw):
    """[MQTT-3.3.1-3] The DUP flag of an outgoing PUBLISH is set independently of the
    incoming one: a DUP=1 PUBLISH from a publisher arrives at a new subscriber with DUP 0."""
    s = raw("dupi-s")
    s.subscribe([("dupi/t", 1)])
    c = raw("dupi-p")
    c.send(m.publish("dupi/t", b"d", qos=1, pid=3, dup=True))
    assert c.recv().raw == b"\x40\x02\x00\x03"
    p = s.recv_publish()
    assert not p.dup


def test_MQTT_3_8_4_3_resubscribe_resends_retained(raw):
    """[MQTT-3.8.4-3] Replacing a subscription re-sends the matching retained messages."""
    raw("rr-p").publish("rr/t", b"again", qos=1, retain=True)
    s = raw("rr-s")
    s.subscribe([("rr/t", 0)])
    assert s.recv_publish().payload == b"again"
    s.subscribe([("rr/t", 1)], pid=2)
    p = s.recv_publish()
    assert (p.payload, p.retain) == (b"again", True)


def test_MQTT_3_10_4_6_unsubscribe_several_filters_one_unsuback(raw):
    """[MQTT-3.10.4-6] Several filters in one UNSUBSCRIBE: one UNSUBACK, all removed."""
    s = raw("us2")
    s.subscribe([("us2/a", 0), ("us2/b", 0), ("us2/c", 0)])
    s.send(m.unsubscribe(9, ["us2/a", "us2/b"]))
    assert s.recv().raw == b"\xb0\x02\x00\x09"
    p = raw("us2-p")
    for t in ("us2/a", "us2/b", "us2/c"):
        p.publish(t, t.encode(), qos=1)
    assert s.recv_publish().topic == "us2/c"
    assert_nothing_before_ping(p, s)


def test_pubrel_for_unknown_id_gets_pubcomp(raw):
    """[MQTT-4.3.3] A PUBREL is answered with PUBCOMP with the same id, even when the id is
    not (or no longer) known: the sender must be able to finish its flow."""
    c = raw("unk-rel")
    c.send(m.pubrel(0x4242))
    assert c.recv().raw == b"\x70\x02\x42\x42"


def test_MQTT_4_4_0_1_unacked_qos2_publish_resent_with_dup(raw, broker):
    """[MQTT-4.4.0-1] A QoS 2 PUBLISH not yet PUBRECed is resent on reconnect with DUP 1 and
    the same id; the flow then completes once."""
    c = raw("dup2", clean=False)
    c.subscribe([("dup2/t", 2)])
    raw("dup2-pub").publish("dup2/t", b"two", qos=2)
    first = c.expect(m.PUBLISH)
    c.close()
    _wait_closed_seen(broker, "dup2")
    c = raw()
    c.send(m.connect("dup2", clean=False))
    assert c.recv().raw == b"\x20\x02\x01\x00"
    again = c.expect(m.PUBLISH)
    assert (again.dup, again.qos, again.pid, again.payload) == (True, 2, first.pid, b"two")
    c.send(m.pubrec(again.pid))
    assert c.recv().raw == b"\x62\x02" + again.pid.to_bytes(2, "big")
    c.send(m.pubcomp(again.pid))
    assert_nothing_before_ping(c)


@pytest.mark.parametrize("version", [3, 4])
def test_v31_and_v311_clients_exchange(raw, version):
    """A 3.1 (MQIsdp) client and a 3.1.1 client on one topic, both directions."""
    a = raw("x31", version=3)
    b = raw("x311", version=4)
    a.subscribe([("x/t", 1)])
    b.subscribe([("x/t", 1)])
    sender, other = (a, b) if version == 3 else (b, a)
    sender.send(m.publish("x/t", b"mixed", qos=1, pid=5))
    got = {}
    for _ in range(2):  # its own copy and the PUBACK, in either order
        pk = sender.recv()
        got[pk.type] = pk
    assert got[m.PUBACK].pid == 5 and got[m.PUBLISH].payload == b"mixed"
    sender.send(m.puback(got[m.PUBLISH].pid))
    assert other.recv_publish().payload == b"mixed"


def test_retained_delivered_at_min_qos(raw):
    """A retained QoS 2 message to a QoS 1 subscription: QoS 1, RETAIN 1."""
    raw("rq-p").publish("rq/t", b"q2", qos=2, retain=True)
    s = raw("rq-s")
    s.subscribe([("rq/t", 1)])
    p = s.recv_publish()
    assert (p.qos, p.retain, p.payload) == (1, True, b"q2")


def test_MQTT_4_7_2_1_retained_dollar_topics_not_sent_to_hash(raw):
    """[MQTT-4.7.2-1] Retained messages on '$' topics are not matched by '#' either."""
    raw("rd-p").publish("$rd/x", b"hidden", qos=1, retain=True)
    a = raw("rd-a")
    a.subscribe([("#", 0)])
    b = raw("rd-b")
    b.subscribe([("$rd/#", 0)])
    assert b.recv_publish().payload == b"hidden"
    assert_nothing_before_ping(a)


def test_MQTT_4_7_2_1_sys_not_matched_by_hash(broker_factory):
    """[MQTT-4.7.2-1] The broker's own $SYS messages (sys_interval 1) never reach '#'."""
    b = broker_factory(extra=["sys_interval 1"])
    a = m.RawClient(b.port)
    try:
        a.connect("sys-hash")
        a.subscribe([("#", 0), ("+/broker/#", 0)])
        deadline = time.monotonic() + 2.2
        while time.monotonic() < deadline:
            try:
                p = a.recv_publish(timeout=0.2)
            except TimeoutError:
                continue
            assert not p.topic.startswith("$"), p.topic
    finally:
        a.close()
