"""Malformed packets and protocol violations close the connection (5.0: after an optional
DISCONNECT with a reason code >= 0x80; midge always sends one), the will of the offending
client is published, and the broker keeps serving everyone else."""

import pytest

import mqtt_raw as m
from harness import IS_MIDGE, assert_broker_serves

# (id, bytes sent after a successful CONNECT, the statement)
CASES_311 = [
    ("reserved-type-0", b"\x00\x00", "MQTT-2.2.1 reserved packet type 0"),
    ("reserved-type-15", b"\xf0\x00", "MQTT-2.2.1 reserved packet type 15 (3.1.1)"),
    ("connack-from-client", b"\x20\x02\x00\x00", "MQTT-4.8 server-to-client packet"),
    ("suback-from-client", b"\x90\x03\x00\x01\x00", "MQTT-4.8 server-to-client packet"),
    ("pubrel-flags-0", b"\x60\x02\x00\x01", "MQTT-3.6.1-1 PUBREL flags must be 0010"),
    ("subscribe-flags-0", b"\x80\x06\x00\x01\x00\x01a\x00", "MQTT-3.8.1-1 flags 0010"),
    ("unsubscribe-flags-0", b"\xa0\x05\x00\x01\x00\x01a", "MQTT-3.10.1-1 flags 0010"),
    ("pingreq-flags", b"\xc1\x00", "MQTT-2.2.2-2 reserved flags"),
    ("puback-flags", b"\x41\x02\x00\x01", "MQTT-2.2.2-2 reserved flags"),
    ("remaining-length-5-bytes", b"\x30\xff\xff\xff\xff\x7f", "MQTT-2.2.3 at most 4 bytes"),
    ("topic-longer-than-packet", b"\x30\x03\x00\x05a", "MQTT-1.5.3 length beyond packet"),
    ("publish-qos-3", b"\x36\x05\x00\x01a\x00\x01", "MQTT-3.3.1-4 QoS 3"),
    ("publish-qos1-pid-0", b"\x32\x05\x00\x01a\x00\x00", "MQTT-2.3.1-1 non-zero id"),
    ("topic-invalid-utf8", b"\x30\x05\x00\x03a\xffb", "MQTT-1.5.3-1 ill-formed UTF-8"),
    ("topic-surrogate", b"\x30\x05\x00\x03\xed\xa0\x80", "MQTT-1.5.3-1 surrogate code point"),
    ("topic-nul", b"\x30\x05\x00\x03a\x00b", "MQTT-1.5.3-2 U+0000"),
    ("topic-plus", b"\x30\x05\x00\x03a/+", "MQTT-3.3.2-2 wildcard in topic name"),
    ("topic-hash", b"\x30\x05\x00\x03a/#", "MQTT-3.3.2-2 wildcard in topic name"),
    ("topic-empty", b"\x30\x03\x00\x00x", "MQTT-4.7.3-1 topic at least one character"),
    ("subscribe-empty", b"\x82\x02\x00\x01", "MQTT-3.8.3-3 at least one filter"),
    ("subscribe-qos-3", b"\x82\x06\x00\x01\x00\x01a\x03", "MQTT-3.8.3-4 requested QoS 3"),
    ("subscribe-reserved-bits", b"\x82\x06\x00\x01\x00\x01a\x04", "MQTT-3.8.3-4 reserved"),
    ("subscribe-pid-0", b"\x82\x06\x00\x00\x00\x01a\x00", "MQTT-2.3.1-1 non-zero id"),
    ("subscribe-invalid-utf8", b"\x82\x06\x00\x01\x00\x01\xff\x00", "MQTT-1.5.3-1"),
    ("subscribe-filter-nul", b"\x82\x07\x00\x01\x00\x02a\x00\x00", "MQTT-1.5.3-2 U+0000"),
    ("subscribe-missing-options", b"\x82\x05\x00\x01\x00\x01a", "MQTT-3.8.3 truncated"),
    ("unsubscribe-empty", b"\xa2\x02\x00\x01", "MQTT-3.10.3-2 at least one filter"),
    ("unsubscribe-pid-0", b"\xa2\x05\x00\x00\x00\x01a", "MQTT-2.3.1-1 non-zero id"),
    ("pingreq-with-body", b"\xc0\x01\x00", "MQTT-3.12 no payload"),
    ("disconnect-with-body-311", b"\xe0\x01\x00", "MQTT-3.14 no payload"),
]

# mosquitto 2.0.11 lets these through (spec deviations); they stay strict for midge
MOSQUITTO_LENIENT = {
    "suback-from-client": "ignores a SUBACK sent by a client",
    "pingreq-flags": "answers a PINGREQ with reserved flags set",
    "puback-flags": "ignores a PUBACK with reserved flags set",
    "pingreq-with-body": "answers a PINGREQ that has a body",
}


def _params(cases):
    out = []
    for cid, data, why in cases:
        marks = []
        if cid in MOSQUITTO_LENIENT:
            marks.append(pytest.mark.mosquitto_xfail(MOSQUITTO_LENIENT[cid]))
        out.append(pytest.param(data, why, id=cid, marks=marks))
    return out


@pytest.mark.parametrize("data,why", _params(CASES_311))
def test_malformed_311_closes_connection_others_unaffected(raw, broker, data, why):
    """Each case names its statement; [MQTT-4.8.0-1] the connection is closed."""
    w = raw("mw-watch")
    w.subscribe([("mw/will", 0)])
    c = raw("mw-bad", will=dict(topic="mw/will", payload=b"died"))
    c.send(data)
    got = c.expect_closed()
    assert got == [], "%s: sent %r before closing" % (why, got)
    assert w.recv_publish().payload == b"died"  # [MQTT-3.1.2-8] will on protocol error
    w.send(m.pingreq())
    assert w.recv().raw == b"\xd0\x00"
    assert_broker_serves(broker.port)


CASES_5 = [
    ("reserved-type-0", b"\x00\x00", (0x81, 0x82)),
    ("pubrel-flags-0", b"\x60\x02\x00\x01", 0x81),
    ("subscribe-flags-0", b"\x80\x07\x00\x01\x00\x00\x01a\x00", 0x81),
    ("remaining-length-5-bytes", b"\x30\xff\xff\xff\xff\x7f", 0x81),
    ("publish-qos-3", b"\x36\x06\x00\x01a\x00\x01\x00", 0x81),
    ("topic-invalid-utf8", b"\x30\x06\x00\x03a\xffb\x00", 0x81),
    ("topic-plus", b"\x30\x06\x00\x03a/+\x00", (0x90, 0x81, 0x82)),
    ("bad-property-id", b"\x30\x07\x00\x01a\x02\x7f\x00x", 0x81),
    ("duplicate-property", b"\x30\x09\x00\x01a\x04\x01\x00\x01\x00x", 0x82),
    ("subscribe-no-local-on-share", b"\x82\x12\x00\x01\x00\x00\x0c$share/g/a/b\x04", 0x82),
    ("subscribe-retain-handling-3", b"\x82\x07\x00\x01\x00\x00\x01a\x30", (0x82, 0x81)),
    ("subscribe-reserved-option-bits", b"\x82\x07\x00\x01\x00\x00\x01a\xc0", 0x81),
    ("connect-again", m.connect("again", version=5), 0x82),
    ("topic-alias-0", m.publish("a", b"x", version=5, properties=[(m.P_TOPIC_ALIAS, 0)]), 0x94),
    ("unknown-alias", m.publish("", b"x", version=5, properties=[(m.P_TOPIC_ALIAS, 1)]), 0x82),
    ("subscription-id-in-publish",
     m.publish("a", b"x", version=5, properties=[(m.P_SUBSCRIPTION_ID, 1)]), 0x82),
    ("puback-flags", b"\x41\x02\x00\x01", 0x81),
    ("subscription-id-0", m.subscribe(1, [("a", 0)], version=5,
                                      properties=[(m.P_SUBSCRIPTION_ID, 0)]), (0x81, 0x82)),
    # AUTH while no enhanced authentication is in progress
    ("auth-unexpected", b"\xf0\x00", 0x82),
    # [MQTT-3.3.2-14] a Response Topic is a Topic Name: no wildcards
    ("response-topic-wildcard", m.publish("a", b"x", version=5,
                                          properties=[(m.P_RESPONSE_TOPIC, "r/#")]),
     (0x82, 0x81, 0x90)),
]

MOSQUITTO_LENIENT_5 = {
    "response-topic-wildcard": "accepts a Response Topic with wildcards",
    "subscription-id-in-publish": "accepts a Subscription Identifier from a client",
    "subscribe-no-local-on-share": "grants No Local on a shared subscription",
    "connect-again": "does not close a 5.0 connection on a second CONNECT",
    "puback-flags": "ignores a PUBACK with reserved flags set",
}


@pytest.mark.parametrize("data,reason", [
    pytest.param(d, r, id=i, marks=[pytest.mark.mosquitto_xfail(MOSQUITTO_LENIENT_5[i])]
                 if i in MOSQUITTO_LENIENT_5 else [])
    for i, d, r in CASES_5])
def test_malformed_5_disconnect_reason_then_close(raw, broker, data, reason):
    """5.0 [MQTT-4.13.1-1]: malformed packet (0x81) or protocol error (0x82, or a more
    specific code): the connection is closed, after a DISCONNECT with that reason code (the
    spec says MAY; midge always sends it)."""
    w = raw("m5-watch", version=5)
    w.subscribe([("m5/will", 0)])
    c = raw("m5-bad", version=5, will=dict(topic="m5/will", payload=b"died"))
    c.send(data)
    got = c.expect_closed()
    assert all(p.type == m.DISCONNECT for p in got), got
    if IS_MIDGE:
        assert len(got) == 1, "midge sends a DISCONNECT before closing"
    for p in got:
        assert p.reason >= 0x80
        allowed = reason if isinstance(reason, tuple) else (reason,)
        if IS_MIDGE:
            assert p.reason in allowed, "DISCONNECT reason %#x, expected %s" % (
                p.reason, "/".join("%#x" % r for r in allowed))
    assert w.recv_publish().payload == b"died"
    assert_broker_serves(broker.port)


@pytest.mark.parametrize("data", [
    pytest.param(b"\x10\x0a\x00\x04MQTT\x04\x02\x00\x3c", id="client-id-missing"),
    pytest.param(b"\x10\xff\xff\xff\xff\x01", id="remaining-len-5-bytes"),
    pytest.param(m.connect("u\x00x"), id="client-id-nul"),
    pytest.param(m.connect(b"a\xffb"), id="client-id-invalid-utf8"),
    pytest.param(m.connect("wt", will=dict(topic="a/+", payload=b"x")), id="will-topic-wildcard"),
    pytest.param(m.connect("wq", will=dict(topic="a", payload=b"x", qos=3)), id="will-qos-3"),
    pytest.param(b"\x11" + m.connect("fl")[1:], id="connect-reserved-header-flags"),
    # [MQTT-3.1.2-9] Will Flag set but no will topic / message in the payload
    pytest.param(b"\x10\x0f\x00\x04MQTT\x04\x06\x00\x3c\x00\x03wfm", id="will-fields-missing"),
    # [MQTT-3.1.2-15] Will Retain set without Will Flag
    pytest.param(b"\x10\x0f\x00\x04MQTT\x04\x22\x00\x3c\x00\x03wrn", id="will-retain-no-will"),
    # [MQTT-3.1.2-19] User Name Flag set, no user name
    pytest.param(b"\x10\x0f\x00\x04MQTT\x04\x82\x00\x3c\x00\x03unm", id="username-missing"),
    # [MQTT-3.1.2-21] Password Flag set, no password
    pytest.param(b"\x10\x14\x00\x04MQTT\x04\xc2\x00\x3c\x00\x03pwm\x00\x03usr",
                 id="password-missing"),
])
def test_malformed_connect_closes(raw, broker, data):
    """[MQTT-3.1.4-1] A CONNECT that does not conform: close, no CONNACK 0."""
    c = raw()
    c.send(data)
    got = c.expect_closed()
    assert not any(p.type == m.CONNACK and p.reason == 0 for p in got), got
    assert_broker_serves(broker.port)


def test_half_packet_then_close_does_not_disturb(raw, broker):
    c = raw("half")
    c.send(b"\x30\x64\x00\x05hello")  # announces 100 bytes, sends 7
    c.abort()
    assert_broker_serves(broker.port)


@pytest.mark.threaded
def test_many_bad_clients_at_once(raw, broker):
    bad = []
    for i in range(20):
        c = raw("bad%d" % i)
        bad.append(c)
    strict = [d for cid, d, _ in CASES_311 if cid not in MOSQUITTO_LENIENT]
    for i, c in enumerate(bad):
        c.send(strict[i % len(strict)])
    for c in bad:
        c.expect_closed()
    assert_broker_serves(broker.port)


@pytest.mark.parametrize("props", [
    pytest.param([(m.P_RECEIVE_MAXIMUM, 0)], id="receive-maximum-0"),
    pytest.param([(m.P_MAXIMUM_PACKET_SIZE, 0)], id="maximum-packet-size-0"),
    pytest.param([(m.P_REQUEST_PROBLEM_INFO, 2)], id="request-problem-information-2"),
    pytest.param([(m.P_REQUEST_RESPONSE_INFO, 2)], id="request-response-information-2"),
    pytest.param([(m.P_SESSION_EXPIRY, 1), (m.P_SESSION_EXPIRY, 2)], id="session-expiry-twice"),
    pytest.param([(m.P_TOPIC_ALIAS, 1)], id="property-not-for-connect"),
])
def test_MQTT_3_1_2_connect_v5_bad_properties(raw, broker, props):
    """5.0 3.1.2.11: Receive Maximum 0, Maximum Packet Size 0, a value other than 0/1 for the
    request flags, a property given twice, or one that does not belong in CONNECT: a
    Protocol Error (CONNACK >= 0x80, or none) and the close."""
    c = raw(version=5)
    c.send(m.connect("badprops", version=5, properties=props))
    got = c.expect_closed()
    assert len(got) <= 1, got
    for p in got:
        assert p.type == m.CONNACK and p.reason >= 0x80, got
    assert_broker_serves(broker.port)


@pytest.mark.parametrize("flt", [
    pytest.param("$share/g", marks=pytest.mark.mosquitto_xfail("grants '$share/g'")),
    pytest.param("$share//a", marks=pytest.mark.mosquitto_xfail("grants an empty ShareName")),
    "$share/g+/a", "$share/g#/a"])
def test_bad_shared_subscription_filters(raw, broker, flt):
    """[MQTT-4.8.2-1/2] ShareName at least one character, no '/', '+', '#', followed by
    '/' and a filter: SUBACK 0x8F (Topic Filter invalid) / 0x9E, or DISCONNECT >= 0x80 and close."""
    c = raw("badshare", version=5)
    c.send(m.subscribe(3, [(flt, 1)], version=5))
    if IS_MIDGE:  # midge: DISCONNECT 0x8F (Topic Filter invalid) and the close
        assert [p.raw for p in c.expect_closed()] == [b"\xe0\x01\x8f"]
        return
    try:
        p = c.recv()
    except m.Closed:
        return
    if p.type == m.DISCONNECT:
        assert p.reason >= 0x80
        c.expect_closed()
    else:
        assert p.type == m.SUBACK and p.codes[0] in (0x8F, 0x9E, 0x80), p
