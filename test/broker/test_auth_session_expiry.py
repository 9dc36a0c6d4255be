"""MQTT 5.0 enhanced authentication without an authentication plugin, and session expiry:
the 5.0 Session Expiry Interval and mosquitto's persistent_client_expiration.

mosquitto.conf(5) persistent_client_expiration: "an integer followed by one of h d w m y for
hour, day, week, month and year" (so the shortest expiry is an hour: a 3.1.1 session cannot
be expired within a short test; the tests check the syntax and that a session survives a
short absence).
"""

import re
import time

import pytest

import mqtt_raw as m
from harness import assert_broker_serves, assert_nothing_before_ping, run_broker_until_exit


# ---------------------------------------------------------------- AUTH

@pytest.mark.parametrize("with_data", [False, True], ids=["method", "method+data"])
def test_MQTT_4_12_0_1_unsupported_auth_method_0x8c(raw, broker, with_data):
    """[MQTT-4.12.0-1] "If the Server does not support the Authentication Method supplied
    by the Client, it MAY send a CONNACK with a Reason Code of 0x8C (Bad authentication
    method) or 0x87 (Not Authorized) ... and MUST close the Network Connection".
    mosquitto without an auth plugin answers 0x8C, and so does midge: CONNACK with session
    present 0 and reason 0x8C, then the close; other clients are unaffected."""
    c = raw(version=5)
    props = [(m.P_AUTH_METHOD, "SCRAM-SHA-1")]
    if with_data:
        props.append((m.P_AUTH_DATA, b"client-first-message"))
    c.send(m.connect("auth8c", version=5, properties=props))
    got = c.expect_closed()
    assert [(p.type, p.reason) for p in got] == [(m.CONNACK, 0x8C)], got
    ack = got[0]
    assert ack.raw[0] == 0x20 and ack.session_present == 0
    # the method was not accepted: the CONNACK does not echo it
    assert ack.props.get(m.P_AUTH_METHOD) is None, ack.props
    assert_broker_serves(broker.port, tag="auth")


def test_auth_packet_without_auth_method_is_protocol_error(raw):
    """[MQTT-4.12.0-7] "If the Client does not include an Authentication Method in the
    CONNECT, the Client MUST NOT send an AUTH packet"; the server treats one as a Protocol
    Error: DISCONNECT 0x82 (or just the close) [MQTT-4.13.1-1], and never answers with AUTH
    [MQTT-4.12.0-6]."""
    c = raw("noauth", version=5)
    # AUTH, reason 0x18 (Continue authentication), no properties
    c.send(m.packet(m.AUTH, 0, b"\x18\x00"))
    got = c.expect_closed()
    assert all(p.type == m.DISCONNECT and p.reason == 0x82 for p in got), got
    assert len(got) <= 1, got


# ---------------------------------------------------------------- 5.0 session expiry

def _c5(raw, cid, expiry, clean=False):
    return raw(cid, version=5, clean=clean, properties=[(m.P_SESSION_EXPIRY, expiry)])


def test_MQTT_3_1_2_session_expiry_1s_boundary(raw):
    """3.1.2.11.2 Session Expiry Interval 1: the session outlives a short absence (session
    present 1 [MQTT-3.2.2-2], queued message delivered) and is gone after the interval
    (session present 0 [MQTT-3.2.2-3], the message queued meanwhile discarded)."""
    c = _c5(raw, "se1b", 1)
    c.subscribe([("se1b/t", 1)])
    c.disconnect(reason=0)
    p = raw("se1b-pub", version=5)
    p.publish("se1b/t", b"kept", qos=1)
    c = _c5(raw, "se1b", 1)
    assert c.connack.session_present == 1
    assert c.recv_publish().payload == b"kept"
    c.disconnect(reason=0)
    p.publish("se1b/t", b"lost", qos=1, pid=2)
    time.sleep(2.2)  # the interval, plus the broker's expiry check granularity
    c = _c5(raw, "se1b", 1)
    assert c.connack.session_present == 0
    assert_nothing_before_ping(c)


# ---------------------------------------------------------------- persistent_client_expiration

def test_persistent_client_expiration_seconds_rejected(tmp_path):
    """mosquitto's units are h d w m y: `2s` is a configuration error naming the file and
    line (mosquitto: "Invalid persistent_client_expiration duration", exit status 3)."""
    rc, out = run_broker_until_exit(
        tmp_path, "listener 0 127.0.0.1\nallow_anonymous true\npersistent_client_expiration 2s\n")
    assert rc == 3, out
    assert re.search(r"exit\.conf:3", out), out
    assert re.search(r"persistent_client_expiration", out), out


def test_persistent_client_expiration_keeps_session_within_period(broker_factory):
    """persistent_client_expiration 1h: a 3.1.1 clean-session-0 client that is away for a
    second still has its session and its queued message [MQTT-3.1.2-4]."""
    b = broker_factory(extra=["persistent_client_expiration 1h"])
    c = m.RawClient(b.port)
    c.connect("pce", clean=False)
    c.subscribe([("pce/t", 1)])
    c.disconnect()
    p = m.RawClient(b.port)
    p.connect("pce-pub")
    p.publish("pce/t", b"still", qos=1)
    p.disconnect()
    time.sleep(1.2)
    c = m.RawClient(b.port)
    assert c.connect("pce", clean=False).session_present == 1
    assert c.recv_publish().payload == b"still"
    c.disconnect()
