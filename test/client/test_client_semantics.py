"""Where paho-mqtt and libmosquitto agree on *when* things happen, libmidge does the same:
a QoS 2 message reaches on_message at PUBREL, nothing is handled after midge_disconnect is
called from a callback, and on_log lines come in the order of what they describe, also across
the loop_start thread. Against a scripted fake broker (hand-built packets from
test/mqtt_raw.py), and against mosquitto for the threaded log order."""

import os
import re
import sys
import time

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import mosq, cbin, spawn, fake  # noqa: F401  (fixtures)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import mqtt_raw as raw  # noqa: E402
from client_helpers import BUILD  # noqa: E402

# wall-clock checks stay out of the TSan pass (see test/broker/lib/harness.py, UNDER_TSAN)
UNDER_TSAN = "tsan" in os.path.basename(os.path.normpath(BUILD))

PINGRESP = b"\xd0\x00"  # unasked for, but harmless: its log line says all before it is handled


def connack(version):
    return bytes([0x20, 3, 0, 0, 0]) if version == 5 else bytes([0x20, 2, 0, 0])


def logs(lines):
    """on_log lines without their timestamps, and the callbacks' lines, in printed order"""
    return [re.sub(r"^log: \[\d+\] Client \S+ ", "log: ", ln) for ln in lines]


def index(lines, pred):
    for i, ln in enumerate(lines):
        if pred in ln:
            return i
    raise AssertionError("no %r in\n%s" % (pred, "\n".join(lines)))


# ---- 1. inbound QoS 2: on_message at PUBREL (paho 1.6 _handle_pubrel, libmosquitto
# ---- handle__pubrel), not at PUBLISH

@pytest.mark.parametrize("version", [4, 5])
def test_inbound_qos2_delivered_at_pubrel(fake, cbin, spawn, version):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", str(version), "-d", "connect",
               "recv", "2", "5000", "disconnect"])
    conn = fake.accept(version)
    conn.expect(raw.CONNECT)
    conn.send(connack(version))
    conn.send(raw.publish("q/2", b"held", qos=2, pid=9, version=version))
    p = conn.expect(raw.PUBREC)
    assert (p.type, p.pid, p.raw[:4]) == (raw.PUBREC, 9, bytes([0x50, 2, 0, 9]))
    conn.send(raw.publish("q/2", b"held", qos=2, pid=9, dup=True, version=version))  # PUBREC lost
    assert conn.expect(raw.PUBREC).raw[:4] == bytes([0x50, 2, 0, 9])
    conn.send(PINGRESP)
    c.expect("received PINGRESP")
    assert not [ln for ln in c.lines if ln.startswith("msg ")], c.lines  # not before PUBREL
    conn.send(raw.pubrel(9, version=version))
    assert conn.expect(raw.PUBCOMP).raw[:4] == bytes([0x70, 2, 0, 9])
    c.expect("msg ")
    # a second message with another id, and the first id again once it is free
    conn.send(raw.publish("q/2", b"two", qos=2, pid=9, version=version, retain=True))
    assert conn.expect(raw.PUBREC).raw[:4] == bytes([0x50, 2, 0, 9])
    conn.send(raw.pubrel(9, version=version))
    assert conn.expect(raw.PUBCOMP).raw[:4] == bytes([0x70, 2, 0, 9])
    conn.expect(raw.DISCONNECT, timeout=5)
    c.expect("done")
    assert c.finish()[0] == 0
    out = logs(c.lines)
    msgs = [ln for ln in out if ln.startswith("msg ")]
    assert msgs == ["msg topic=q/2 qos=2 retain=0 dup=0 len=4 payload=held",
                    "msg topic=q/2 qos=2 retain=1 dup=0 len=3 payload=two"]
    # libmosquitto's order: PUBREL received, PUBCOMP queued, then on_message
    i = index(out, "log: received PUBREL (Mid: 9)")
    assert out[i:i + 3] == ["log: received PUBREL (Mid: 9)", "log: sending PUBCOMP (m9)", msgs[0]]


def test_inbound_qos2_held_beyond_receive_maximum_is_a_protocol_error(fake, cbin, spawn):
    """5.0 [MQTT-3.3.4-9]: more unacknowledged QoS 2 messages than our Receive Maximum ends the
    connection with DISCONNECT 0x93 (Receive Maximum exceeded)."""
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "5", "-R", "2", "connect",
               "loop", "1500"])
    conn = fake.accept(5)
    p = conn.expect(raw.CONNECT)
    assert bytes([raw.P_RECEIVE_MAXIMUM, 0, 2]) in p.body[11:11 + p.body[10]]  # CONNECT properties
    conn.send(connack(5))
    for pid in (1, 2):
        conn.send(raw.publish("r/m", b"x", qos=2, pid=pid, version=5))
        assert conn.expect(raw.PUBREC).pid == pid
    conn.send(raw.publish("r/m", b"x", qos=2, pid=1, dup=True, version=5))  # a duplicate: fine
    assert conn.expect(raw.PUBREC).pid == 1
    conn.send(raw.publish("r/m", b"x", qos=2, pid=3, version=5))            # one too many
    p = conn.expect(raw.DISCONNECT)
    assert p.raw[0] == 0xE0 and p.raw[2] == 0x93
    conn.expect_closed()
    c.expect("done")
    c.finish()
    assert not [ln for ln in c.lines if ln.startswith("msg ")]
    assert "on_disconnect flags=0 rc=-6" in c.lines  # MIDGE_ERR_PROTOCOL


def test_inbound_qos2_held_across_reconnect_with_session(fake, cbin, spawn):
    """A message held when the connection dies is delivered at the PUBREL the broker resends
    with the session; a CONNACK without the session makes the held ones be forgotten."""
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-i", "keep", "-n", "connect",
               "loop", "800", "reconnect", "recv", "1", "3000", "loop", "300", "disconnect",
               "reconnect", "loop", "500", "disconnect"])
    conn = fake.accept()
    conn.expect(raw.CONNECT)
    conn.send(connack(4))
    conn.send(raw.publish("s/q", b"kept", qos=2, pid=5))
    assert conn.expect(raw.PUBREC).pid == 5
    conn.sock.close()
    c.expect("on_disconnect")
    assert not [ln for ln in c.lines if ln.startswith("msg ")]

    conn = fake.accept()
    conn.expect(raw.CONNECT)
    conn.send(bytes([0x20, 2, 1, 0]))                   # session present
    conn.send(raw.pubrel(5))
    assert conn.expect(raw.PUBCOMP).raw == bytes([0x70, 2, 0, 5])
    c.expect("msg topic=s/q qos=2")
    conn.send(raw.publish("s/q", b"lost", qos=2, pid=6))
    assert conn.expect(raw.PUBREC).pid == 6
    conn.expect(raw.DISCONNECT)

    conn = fake.accept()
    conn.expect(raw.CONNECT)
    conn.send(connack(4))                               # no session: 6 is forgotten
    conn.send(raw.pubrel(6))
    assert conn.expect(raw.PUBCOMP).raw == bytes([0x70, 2, 0, 6])
    conn.expect(raw.DISCONNECT)
    c.expect("done")
    assert c.finish()[0] == 0
    assert [ln for ln in c.lines if ln.startswith("msg ")] == \
        ["msg topic=s/q qos=2 retain=0 dup=0 len=4 payload=kept"]


# ---- 2. midge_disconnect from a callback: nothing after it is handled

def test_disconnect_in_on_message_stops_the_rest_of_the_buffer(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-d", "-C", "1", "connect", "loop", "1500"])
    conn = fake.accept()
    conn.expect(raw.CONNECT)
    conn.send(connack(4))
    # one write: the client reads all three packets at once
    conn.send(raw.publish("a", b"1", qos=1, pid=1) + raw.publish("a", b"2", qos=1, pid=2) +
              PINGRESP)
    assert conn.expect(raw.PUBACK).raw == bytes([0x40, 2, 0, 1])
    assert conn.expect(raw.DISCONNECT).raw == b"\xe0\x00"  # and no PUBACK for 2
    conn.expect_closed()
    c.expect("done")
    assert c.finish()[0] == 0
    out = logs(c.lines)
    assert [ln for ln in out if ln.startswith("msg ")] == \
        ["msg topic=a qos=1 retain=0 dup=0 len=1 payload=1"]
    assert not [ln for ln in out if "m2," in ln or "PINGRESP" in ln], out
    assert "on_disconnect flags=0 rc=0" in out


def test_disconnect_in_on_subscribe_stops_the_rest_of_the_buffer(fake, cbin, spawn):
    """mosquitto_sub -E -U: SUBACK and UNSUBACK arrive together; libmosquitto handles no packet
    after the DISCONNECT that on_subscribe asks for."""
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-d", "-E", "connect", "sub", "x", "0",
               "unsub", "y", "loop", "1500"])
    conn = fake.accept()
    conn.expect(raw.CONNECT)
    conn.send(connack(4))
    assert conn.expect(raw.SUBSCRIBE).body[:2] == bytes([0, 1])
    assert conn.expect(raw.UNSUBSCRIBE).body[:2] == bytes([0, 2])
    conn.send(raw.packet(raw.SUBACK, 0, bytes([0, 1, 0])) + raw.packet(raw.UNSUBACK, 0, bytes([0, 2])))
    assert conn.expect(raw.DISCONNECT).raw == b"\xe0\x00"
    conn.expect_closed()
    c.expect("done")
    assert c.finish()[0] == 0
    out = logs(c.lines)
    i = index(out, "log: received SUBACK")
    assert out[i:i + 4] == ["log: received SUBACK", "on_subscribe mid=1 n=1 0",
                            "log: sending DISCONNECT", "disconnect-in-callback rc=0"], out
    assert not [ln for ln in out if "UNSUBACK" in ln or "on_unsubscribe" in ln], out


# ---- 3. on_log in order with what it describes, across threads

@pytest.mark.threaded
@pytest.mark.parametrize("version", ["4", "5"])
def test_log_order_with_loop_start(mosq, cbin, version):
    """The main thread publishes while the loop thread runs. -L 100 makes every "sending" line
    take 100 ms to print: the broker's answer must still be logged after it."""
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-V", version, "-d", "-L", "100",
                    "start", "connect", "sub", "o/t", "2", "pub", "o/t", "a", "1", "0",
                    "pub", "o/t", "b", "2", "0", "pub", "o/t", "c", "0", "0",
                    "recv", "3", "5000", "waitpub", "3000", "disconnect", "stop"], timeout=60)
    out = logs(lines)

    def before(a, b):
        ia, ib = index(out, a), index(out, b)
        assert ia < ib, "%r after %r:\n%s" % (a, b, "\n".join(out))

    before("log: sending CONNECT", "log: received CONNACK")
    before("log: received CONNACK", "on_connect ")
    before("log: sending SUBSCRIBE (Mid: 1,", "log: received SUBACK")
    before("log: received SUBACK", "on_subscribe mid=1")
    before("log: sending PUBLISH (d0, q1, r0, m2,", "log: received PUBACK (Mid: 2,")
    before("log: received PUBACK (Mid: 2,", "on_publish mid=2 ")
    before("log: sending PUBLISH (d0, q2, r0, m3,", "log: received PUBREC (Mid: 3)")
    before("log: received PUBREC (Mid: 3)", "log: sending PUBREL (m3)")
    before("log: sending PUBREL (m3)", "log: received PUBCOMP (Mid: 3,")
    before("log: received PUBCOMP (Mid: 3,", "on_publish mid=3 ")
    before("log: sending PUBLISH (d0, q0, r0, m4,", "on_publish mid=4 ")
    for payload in "abc":
        msg = index(out, " payload=%s" % payload)
        got = [i for i, ln in enumerate(out) if "received PUBLISH" in ln and i < msg]
        assert got, out
    before("log: sending DISCONNECT", "on_disconnect flags=0 rc=0")


# ---- connect / reconnect: a slow name lookup does not hold the loop thread

@pytest.mark.threaded
def test_disconnect_and_loop_stop_during_a_slow_reconnect_lookup(mosq, cbin, spawn):
    """The loop_start thread reconnects after the broker went away, and the name lookup hangs
    (5 s here). midge_disconnect then midge_loop_stop must end it at once, and no connection
    may be made after midge_disconnect, even once the lookup would have answered."""
    os.environ["SLOWDNS_MS"] = "5000"
    try:
        c = spawn([cbin("slowdns"), "-p", str(mosq.port), "-h", "localhost", "start", "connect",
                   "sleep", "2000", "disconnect", "stop", "sleep", "6000"])
    finally:
        del os.environ["SLOWDNS_MS"]
    c.expect("connect rc=0")
    mosq.stop()
    c.expect("on_disconnect flags=0 rc=-5")
    mosq.start()                           # there to connect to, were the lookup to finish
    t0 = time.monotonic()
    c.expect("stop rc=0", timeout=10)
    stopped = time.monotonic() - t0        # the lookup started about 1 s after the loss
    c.expect("done", timeout=10)
    assert c.finish()[0] == 0
    # the clock-free check: loop_stop returned before the lookup answered (the program
    # lives on 6 s after the stop, so the answer comes while it runs)
    i = c.lines.index("stop rc=0")
    assert "slowdns: answered" in c.lines, c.lines
    assert c.lines.index("slowdns: answered") > i, c.lines
    if not UNDER_TSAN:  # wall-clock bounds stay out of the TSan pass
        assert stopped < 3.5, "loop_stop waited %.1f s for the lookup" % stopped
    assert not [ln for ln in c.lines[i:] if ln.startswith("on_connect")], c.lines
    assert [ln for ln in c.lines if ln.startswith("on_connect ")] == ["on_connect flags=0 rc=0"]


# ---- 4. callbacks run in the loop's thread (midge.h, "Threads"): with loop_start running,
# ---- none but on_log is made in the thread that called midge_publish / midge_subscribe

@pytest.mark.threaded
def test_callbacks_run_in_the_loop_thread_also_for_a_refused_publish(fake, cbin, spawn):
    """With loop_start running, no callback but on_log runs in the thread that calls the
    library: not on_connect (midge_connect waits for the loop thread), not on_subscribe, and
    not an on_publish about a publish over the broker's Maximum Packet Size, which
    midge_publish refuses at once whatever the QoS (MIDGE_ERR_OVERSIZE_PACKET). Before that
    refusal, a QoS 1/2 one got on_publish 0x95 in the caller's thread."""
    big = "x" * 100
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "5", "-W", "start", "connect",
               "pub", "t", big, "1", "0", "pub", "t", big, "2", "0", "pub", "t", big, "0", "0",
               "sub", "s", "1", "pub", "t", "small", "1", "0", "waitpub", "5000",
               "disconnect", "stop"])
    conn = fake.accept(5)
    conn.expect(raw.CONNECT)
    conn.send(bytes([0x20, 8, 0, 0, 5, 0x27, 0, 0, 0, 64]))  # Maximum Packet Size 64
    p = conn.expect(raw.SUBSCRIBE)
    conn.send(bytes([0x90, 4, p.raw[2], p.raw[3], 0, 1]))  # SUBACK: QoS 1
    p = conn.expect(raw.PUBLISH)
    assert p.payload == b"small"
    conn.send(raw.puback(p.pid, 5))
    conn.expect(raw.DISCONNECT)
    assert c.finish()[0] == 0
    pubs = [ln for ln in c.lines if ln.startswith("pub ")]
    assert pubs[:3] == ["pub err=-20"] * 3 and len(pubs) == 4, pubs  # MIDGE_ERR_OVERSIZE_PACKET
    mid = int(pubs[3].split("=")[1])
    sub_mid = int([ln for ln in c.lines if ln.startswith("sub rc=")][0].split("=")[1])
    assert [ln for ln in c.lines if ln.startswith("on_")] == [
        "on_connect flags=0 rc=0", "on_subscribe mid=%d n=1 1" % sub_mid,
        "on_publish mid=%d rc=0" % mid, "on_disconnect flags=0 rc=0"]
    assert not [ln for ln in c.lines if ln.startswith("callback ")], c.lines
