"""Protocol state the broker must keep straight (issue 8): who may connect when nothing can
check a password, which acknowledgement fits which message in flight, wills against
message_size_limit, the reason codes of PUBACK / PUBREC, publishing into the broker's own
topic space, reading a DISCONNECT's reason while still sending, and the order of CONNACK
properties. Raw packets (test/mqtt_raw.py), checked byte by byte where the spec or
mosquitto's bytes fix them. Every test also runs against Debian's mosquitto
(MIDGE_TEST_BROKER=mosquitto), which passes all but the ones marked mosquitto_xfail."""

import os
import signal
import socket
import time

import pytest

import mqtt_raw as m
from harness import IS_MIDGE, assert_broker_serves

AS_ROOT = ["user root"] if os.geteuid() == 0 else []

CONNACK_NOT_AUTHORIZED_V3 = b"\x20\x02\x00\x05"
CONNACK_NOT_AUTHORIZED_V5 = b"\x20\x03\x00\x87\x00"


def _closed_with(c, v5_reason):
    """Waits for the close. 5.0: exactly one DISCONNECT with v5_reason before it (midge;
    mosquitto may close without one, which the spec allows [MQTT-4.13.1-1]); 3.x: nothing."""
    got = c.expect_closed()
    if c.version == 5:
        if IS_MIDGE or got:
            assert [p.raw for p in got] == [bytes([0xE0, 0x01, v5_reason])], got
    else:
        assert got == [], got


def _sync(c):
    """A PINGREQ round trip: everything the broker sent c before it has arrived."""
    c.send(m.pingreq())
    c.expect(m.PINGRESP)


# ---------------------------------------------------------------- 1. nothing to check a password

@pytest.mark.parametrize("version", [3, 4, 5], ids=["v31", "v311", "v5"])
@pytest.mark.parametrize("password", [None, "secret"], ids=["user", "user+password"])
def test_allow_anonymous_false_without_password_file_refuses_every_client(broker_factory,
                                                                        version, password):
    """allow_anonymous false and no password_file: nothing can verify a user name, so a
    client that gives one is refused as mosquitto refuses it: 3.1/3.1.1 CONNACK 5 (not
    authorized), 5.0 CONNACK 0x87, then the close. Before issue 8 any user name got in."""
    b = broker_factory(extra=["allow_anonymous false"])
    c = m.RawClient(b.port, version=version)
    c.send(m.connect("named-%d" % version, version=version, username="alice",
                     password=password))
    got = c.expect_closed()
    want = CONNACK_NOT_AUTHORIZED_V5 if version == 5 else CONNACK_NOT_AUTHORIZED_V3
    assert [p.raw for p in got] == [want], got
    c.close()


def test_sighup_allow_anonymous_false_drops_clients_with_a_user_name(broker_factory):
    """A reload that turns allow_anonymous off (still no password_file) closes every client
    that would now be refused: the ones that gave a user name too, not only the anonymous
    ones, as mosquitto 2.0.11 does. A PINGREQ round trip before the reload proves both were
    in."""
    b = broker_factory(extra=AS_ROOT)
    named = m.RawClient(b.port)
    named.connect("hup-named", username="alice", password="pw")
    anon = m.RawClient(b.port, version=5)
    anon.connect("hup-anon5", version=5)
    _sync(named)
    _sync(anon)
    b.rewrite_conf(AS_ROOT + ["allow_anonymous false"])
    b.proc.send_signal(signal.SIGHUP)
    assert named.expect_closed(timeout=5) == []
    _closed_with(anon, 0x87)
    named.close()
    anon.close()


# ---------------------------------------------------------------- 4. wills and message_size_limit

@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_will_payload_over_message_size_limit_refuses_connect(broker_factory, version):
    """A will payload larger than message_size_limit could never be published as a PUBLISH
    of that size: the CONNECT is refused, 3.1.1 CONNACK 5 (as mosquitto), 5.0 CONNACK 0x95
    (Packet too large); nothing is published later. A will of exactly the limit is fine."""
    b = broker_factory(extra=["message_size_limit 10"])
    w = m.RawClient(b.port, version=version)
    w.connect("wl-watch", version=version)
    w.subscribe([("wl/t", 0)])
    big = m.RawClient(b.port, version=version)
    big.send(m.connect("wl-big", version=version, will=dict(topic="wl/t", payload=b"x" * 11)))
    got = big.expect_closed()
    want = b"\x20\x03\x00\x95\x00" if version == 5 else CONNACK_NOT_AUTHORIZED_V3
    assert [p.raw for p in got] == [want], got
    ok = m.RawClient(b.port, version=version)
    ok.connect("wl-ok", version=version, will=dict(topic="wl/t", payload=b"y" * 10))
    ok.abort()
    p = w.recv_publish()
    assert (p.topic, p.payload) == ("wl/t", b"y" * 10)  # only the will that fits
    w.close()
