"""Sessions, reconnects and keepalive: libmidge against mosquitto, and against a scripted fake
broker (hand-built packets from test/mqtt_raw.py) where the bytes on the wire matter."""

import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import mosq, mosq_factory, cbin, spawn, fake  # noqa: F401  (fixtures)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import mqtt_raw as raw  # noqa: E402

PUB = "/usr/bin/mosquitto_pub"


def mpub(port, topic, msg, qos=1, version=None):
    args = [PUB, "-p", str(port), "-t", topic, "-m", msg, "-q", str(qos)]
    if version:
        args += ["-V", version]
    subprocess.run(args, check=True, timeout=10)


@pytest.mark.parametrize("version", ["4", "5"])
def test_persistent_session_gets_messages_queued_offline(mosq, cbin, version):
    exe = cbin("mgtest")
    x = ["-x", "300"] if version == "5" else []
    lines, _ = run([exe, "-p", str(mosq.port), "-V", version, "-i", "sess1", "-n"] + x +
                   ["connect", "sub", "s/t", "1", "loop", "200", "disconnect"])
    assert "on_connect flags=0 rc=0" in lines
    for i in range(3):
        mpub(mosq.port, "s/t", "offline%d" % i, version="mqttv5" if version == "5" else None)
    lines, _ = run([exe, "-p", str(mosq.port), "-V", version, "-i", "sess1", "-n"] + x +
                   ["connect", "recv", "3", "5000", "disconnect"])
    assert "on_connect flags=1 rc=0" in lines  # session present
    assert [ln.split(" payload=")[1] for ln in lines if ln.startswith("msg ")] == \
        ["offline0", "offline1", "offline2"]


def test_published_while_disconnected_is_sent_after_reconnect(mosq, cbin, spawn):
    exe = cbin("mgtest")
    sub = spawn([exe, "-p", str(mosq.port), "connect", "sub", "q/t", "1", "recv", "3", "15000",
                 "disconnect"])
    sub.expect("on_subscribe")
    # publish before connect: the messages wait in the queue and go out after CONNACK
    lines, _ = run([exe, "-p", str(mosq.port), "pub", "q/t", "a", "1", "0", "pub", "q/t", "b", "0",
                    "0", "pub", "q/t", "c", "2", "0", "connect", "waitpub", "5000", "loop", "300",
                    "disconnect"])
    assert [ln for ln in lines if ln.startswith("pub ")] == ["pub mid=1", "pub mid=2", "pub mid=3"]
    sub.expect("recv 3")
    assert sub.finish()[0] == 0
    assert [ln.split(" payload=")[1] for ln in sub.lines if ln.startswith("msg ")] == ["a", "b", "c"]


def connack(session_present=False, rc=0):
    return bytes([0x20, 2, 1 if session_present else 0, rc])


@pytest.mark.parametrize("session_present", [True, False])
def test_inflight_resent_with_dup_after_reconnect(fake, cbin, spawn, session_present):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "4", "-i", "dupper", "-n",
               "connect", "pub", "d/t", "one", "1", "0", "pub", "d/t", "two", "2", "0",
               "loop", "1000", "reconnect", "waitpub", "5000", "disconnect"])
    conn = fake.accept()
    p = conn.expect(raw.CONNECT)
    # 3.1.1 CONNECT, clean session 0, client id "dupper": checked byte by byte
    assert p.raw == bytes([0x10, 18, 0, 4]) + b"MQTT" + bytes([4, 0x00, 0, 60, 0, 6]) + b"dupper"
    conn.send(connack())
    p1 = conn.expect(raw.PUBLISH)
    p2 = conn.expect(raw.PUBLISH)
    assert (p1.qos, p1.dup, p1.pid, p1.payload) == (1, False, 1, b"one")
    assert (p2.qos, p2.dup, p2.pid, p2.payload) == (2, False, 2, b"two")
    conn.send(raw.pubrec(2))                 # "two" moves on to PUBREL ...
    assert conn.expect(raw.PUBREL).raw == bytes([0x62, 2, 0, 2])
    conn.sock.close()                        # ... and the connection dies before PUBACK/PUBCOMP
    c.expect("on_disconnect flags=0 rc=-5")  # MIDGE_ERR_CONN_LOST

    conn = fake.accept()
    conn.expect(raw.CONNECT)
    conn.send(connack(session_present))
    # 3.1.1 with clean session 0: resend unacknowledged PUBLISH (DUP) and PUBREL [MQTT-4.4.0-1]
    p = conn.expect(raw.PUBLISH)
    assert p.raw == bytes([0x3A, 10, 0, 3]) + b"d/t" + bytes([0, 1]) + b"one"
    assert conn.expect(raw.PUBREL).raw == bytes([0x62, 2, 0, 2])
    conn.send(raw.puback(1))
    conn.send(raw.pubcomp(2))
    c.expect("waitpub rc=0")
    conn.expect(raw.DISCONNECT)
    c.expect("done")
    assert c.finish()[0] == 0
    assert "on_publish mid=1 rc=0" in c.lines and "on_publish mid=2 rc=0" in c.lines


def test_v5_inflight_resent_without_dup_when_session_lost(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "5", "-i", "dup5", "connect",
               "pub", "d/t", "one", "1", "0", "loop", "800", "reconnect", "waitpub", "5000",
               "disconnect"])
    conn = fake.accept(5)
    conn.expect(raw.CONNECT)
    conn.send(bytes([0x20, 3, 0, 0, 0]))
    p = conn.expect(raw.PUBLISH)
    assert (p.dup, p.pid) == (False, 1)
    conn.sock.close()
    conn = fake.accept(5)
    conn.expect(raw.CONNECT)
    conn.send(bytes([0x20, 3, 0, 0, 0]))     # no session: a new send, not a retransmission
    p = conn.expect(raw.PUBLISH)
    assert (p.dup, p.pid, p.payload) == (False, 1, b"one")
    conn.send(raw.puback(1, version=5))
    c.expect("waitpub rc=0")
    c.finish()


def test_inbound_qos2_exactly_once(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-i", "q2", "-n", "connect",
               "recv", "5", "1500", "disconnect"])
    conn = fake.accept()
    conn.expect(raw.CONNECT)
    conn.send(connack())
    conn.send(raw.publish("x/y", b"once", qos=2, pid=7))
    assert conn.expect(raw.PUBREC).raw == bytes([0x50, 2, 0, 7])
    conn.send(raw.publish("x/y", b"once", qos=2, pid=7, dup=True))  # PUBREC was lost
    assert conn.expect(raw.PUBREC).raw == bytes([0x50, 2, 0, 7])
    conn.send(raw.pubrel(7))
    assert conn.expect(raw.PUBCOMP).raw == bytes([0x70, 2, 0, 7])
    conn.send(raw.publish("x/y", b"again", qos=2, pid=7))          # id free again: new message
    assert conn.expect(raw.PUBREC).raw == bytes([0x50, 2, 0, 7])
    conn.send(raw.pubrel(7))                                        # on_message comes now
    assert conn.expect(raw.PUBCOMP).raw == bytes([0x70, 2, 0, 7])
    conn.expect(raw.DISCONNECT, timeout=5)
    c.finish()
    msgs = [ln for ln in c.lines if ln.startswith("msg ")]
    assert msgs == ["msg topic=x/y qos=2 retain=0 dup=0 len=4 payload=once",
                    "msg topic=x/y qos=2 retain=0 dup=0 len=5 payload=again"]


def nothing_before_pingreq(conn):
    """The client sent nothing more: its next packet is the keep-alive PINGREQ (-k 1: one
    second after its last packet). The client's packets come in order, and one it should
    not have sent would have gone with the ones before, so it would come first."""
    p = conn.recv(timeout=5)
    assert p.type == raw.PINGREQ, "expected nothing before PINGREQ, got %r" % p
    conn.send(b"\xd0\x00")


def test_inflight_window(fake, cbin, spawn):
    """max_inflight_messages 20 (the default): the 21st QoS 1 message waits for a PUBACK."""
    args = [cbin("mgtest"), "-p", str(fake.port), "-k", "1", "connect"]
    for i in range(25):
        args += ["pub", "w/t", "m%d" % i, "1", "0"]
    args += ["loop", "1500", "waitpub", "5000", "disconnect"]
    c = spawn(args)
    conn = fake.accept()
    conn.expect(raw.CONNECT)
    conn.send(connack())
    got = [conn.expect(raw.PUBLISH).pid for _ in range(20)]
    assert got == list(range(1, 21))
    nothing_before_pingreq(conn)
    conn.send(raw.puback(1) + raw.puback(2))
    assert [conn.expect(raw.PUBLISH).pid for _ in range(2)] == [21, 22]
    nothing_before_pingreq(conn)
    conn.send(b"".join(raw.puback(i) for i in range(3, 23)))
    assert [conn.expect(raw.PUBLISH).pid for _ in range(3)] == [23, 24, 25]
    conn.send(b"".join(raw.puback(i) for i in range(23, 26)))
    c.expect("waitpub rc=0")
    c.finish()


def test_v5_receive_maximum_from_connack(fake, cbin, spawn):
    args = [cbin("mgtest"), "-p", str(fake.port), "-V", "5", "-k", "1", "connect"]
    for i in range(5):
        args += ["pub", "w/t", "m%d" % i, "2", "0"]
    args += ["loop", "2000", "disconnect"]
    c = spawn(args)
    conn = fake.accept(5)
    conn.expect(raw.CONNECT)
    props = raw.props([(raw.P_RECEIVE_MAXIMUM, 2)])
    body = bytes([0, 0]) + props
    conn.send(bytes([0x20]) + raw.varint(len(body)) + body)
    assert [conn.expect(raw.PUBLISH).pid for _ in range(2)] == [1, 2]
    nothing_before_pingreq(conn)
    conn.sock.close()
    c.finish()


def test_keepalive_pingreq_timing(mosq, cbin):
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-k", "1", "-d", "connect",
                    "loop", "3500", "disconnect"])
    pings = [int(re.match(r"log: \[(\d+)\]", ln).group(1)) for ln in lines
             if ln.endswith("sending PINGREQ")]
    resps = [ln for ln in lines if ln.endswith("received PINGRESP")]
    # keepalive 1 s: a PINGREQ about every second of silence, each answered
    assert 2 <= len(pings) <= 4, lines
    assert len(resps) >= len(pings) - 1
    assert 800 <= pings[0] <= 1600, pings
    for a, b in zip(pings, pings[1:]):
        assert 800 <= b - a <= 1600, pings


def test_keepalive_lost_connection_noticed(fake, cbin, spawn):
    t0 = time.monotonic()
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-k", "1", "-d", "connect", "loop", "4000"])
    conn = fake.accept()
    conn.expect(raw.CONNECT)
    conn.send(connack())
    assert conn.expect(raw.PINGREQ, timeout=3).raw == bytes([0xC0, 0])
    # no PINGRESP: the client gives up within another keepalive
    c.expect("on_disconnect flags=0 rc=-17", timeout=4)  # MIDGE_ERR_KEEPALIVE
    assert time.monotonic() - t0 < 3.5
    c.finish()


def test_loop_forever_reconnects_after_broker_restart(mosq, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(mosq.port), "-S", "fr/t", "-C", "2", "-k", "5",
               "connect", "forever"])
    c.expect("on_subscribe")
    mpub(mosq.port, "fr/t", "before")
    c.expect("payload=before")
    mosq.restart()
    c.expect("on_disconnect flags=0 rc=-5")
    # reconnect delay 1..2 s; on_connect subscribes again (the broker kept no session)
    c.expect("on_connect flags=0 rc=0", timeout=15)
    c.expect("on_subscribe")
    mpub(mosq.port, "fr/t", "after")
    c.expect("payload=after")
    c.expect("disconnect-in-callback rc=0")
    c.expect("forever rc=0")
    assert c.finish()[0] == 0


@pytest.mark.threaded
def test_loop_start_reconnects_after_broker_restart(mosq, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(mosq.port), "-S", "fr/t", "-k", "5", "start",
               "connect_async", "recv", "2", "20000", "disconnect", "sleep", "200", "stop"])
    c.expect("on_subscribe")
    mpub(mosq.port, "fr/t", "before")
    c.expect("payload=before")
    mosq.restart()
    c.expect("on_connect flags=0 rc=0", timeout=15)
    c.expect("on_subscribe")
    mpub(mosq.port, "fr/t", "after")
    c.expect("payload=after")
    c.expect("stop rc=0")
    assert c.finish()[0] == 0
