"""mosquitto.conf keywords whose effect a client can see (issue 3's list)."""

import re

import pytest

import mqtt_raw as m
from harness import IS_MIDGE, assert_nothing_before_ping

NAME = "midge" if IS_MIDGE else "mosquitto"


def _client(b, cid, version=4, **kw):
    c = m.RawClient(b.port, version=version)
    c.connack = c.connect(cid, **kw)
    return c


def test_queue_qos0_messages(broker_factory):
    """queue_qos0_messages true: QoS 0 messages are queued for an offline persistent
    session too."""
    b = broker_factory(extra=["queue_qos0_messages true"])
    s = _client(b, "q0", clean=False)
    s.subscribe([("q0/t", 0)])
    s.disconnect()
    p = _client(b, "q0-p")
    p.send(m.publish("q0/t", b"zero"))
    p.send(m.pingreq())
    p.expect(m.PINGRESP)
    p.close()
    s = _client(b, "q0", clean=False)
    assert s.recv_publish().payload == b"zero"
    s.close()


def test_allow_zero_length_clientid_false(broker_factory):
    """allow_zero_length_clientid false: an empty id is refused (3.1.1 CONNACK 0x02, 5.0
    0x85 Client Identifier not valid)."""
    b = broker_factory(extra=["allow_zero_length_clientid false"])
    c = m.RawClient(b.port)
    c.send(m.connect(""))
    assert [p.raw for p in c.expect_closed()] == [b"\x20\x02\x00\x02"]
    c5 = m.RawClient(b.port, version=5)
    c5.send(m.connect("", version=5))
    got = c5.expect_closed()
    # the spec says MAY 0x85; mosquitto answers 0x80 (Unspecified error), midge 0x85
    allowed = [[(m.CONNACK, 0x85)]] + ([] if IS_MIDGE else [[(m.CONNACK, 0x80)]])
    assert [(p.type, p.reason) for p in got] in allowed, got


def test_auto_id_prefix(broker_factory):
    b = broker_factory(extra=["auto_id_prefix zz-"])
    c = _client(b, "", version=5)
    assert c.connack.props.get(m.P_ASSIGNED_CLIENT_ID, "").startswith("zz-")
    c.close()


def test_max_inflight_messages(broker_factory):
    """max_inflight_messages 2: at most two unacknowledged QoS 1 messages towards a client
    (3.1.1 has no Receive Maximum; this is the server's window)."""
    b = broker_factory(extra=["max_inflight_messages 2"])
    s = _client(b, "mi")
    s.subscribe([("mi/t", 1)])
    p = _client(b, "mi-p")
    for i in range(5):
        p.publish("mi/t", b"%d" % i, qos=1, pid=i + 1)
    first = [s.recv_publish(ack=False) for _ in range(2)]
    assert_nothing_before_ping(p, s)
    for f in first:
        s.send(m.puback(f.pid))
    rest = s.collect(3)
    assert [int(x.payload) for x in first + rest] == list(range(5))
    s.close()
    p.close()


def test_allow_anonymous_false_refuses_anonymous(broker_factory):
    """allow_anonymous false (no password file): an anonymous client gets CONNACK 0x05
    (3.1.1 not authorized) / 0x87 (5.0), then the close."""
    b = broker_factory(extra=["allow_anonymous false"])
    c = m.RawClient(b.port)
    c.send(m.connect("anon"))
    assert [p.raw for p in c.expect_closed()] == [b"\x20\x02\x00\x05"]
    c5 = m.RawClient(b.port, version=5)
    c5.send(m.connect("anon5", version=5))
    got = c5.expect_closed()
    assert [(p.type, p.reason) for p in got] == [(m.CONNACK, 0x87)], got


def test_connection_messages_false(broker_factory):
    b = broker_factory(extra=["connection_messages false"])
    c = _client(b, "quiet")
    c.send(m.pingreq())
    c.expect(m.PINGRESP)
    # logged in order: the PINGRESP's line comes after any line about the CONNECT
    b.wait_log(r"Sending PINGRESP to quiet")
    assert "New client connected" not in b.log()
    c.disconnect()


def test_log_timestamp_false(broker_factory):
    b = broker_factory(extra=["log_timestamp false"])
    b.wait_log(r"^%s version \S+ (starting|running)" % NAME)


def test_set_tcp_nodelay_and_more_accepted(broker_factory):
    """Keywords that only tune: accepted, and the broker serves."""
    b = broker_factory(extra=["set_tcp_nodelay true", "max_queued_bytes 1000000",
                              "max_inflight_bytes 0", "persistent_client_expiration 2h",
                              "sys_interval 10", "log_type error", "log_type warning",
                              "log_type notice", "log_type information",
                              "log_dest stdout", "retain_available true"])
    c = _client(b, "tune")
    c.publish("t/t", b"x", qos=1)
    c.disconnect()


@pytest.mark.parametrize("line", ["listener 1883 # comment", "allow_anonymous true # c"])
def test_trailing_comments(broker_factory, line):
    """The lecture's lines with trailing comments parse (port replaced by a free one)."""
    if line.startswith("listener"):
        from harness import free_port
        line = "listener %d 127.0.0.1 # allow connections from other computers" % free_port()
        b = broker_factory(extra=[line])
        port = int(re.search(r"listener (\d+)", line).group(1))
        c = m.RawClient(port)
    else:
        b = broker_factory(extra=[line])
        c = m.RawClient(b.port)
    c.connect("tc")
    c.disconnect()
