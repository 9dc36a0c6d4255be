"""Byte-level framing: Remaining Length boundaries, packets split across reads and packed
into one, large payloads to a slow reader, long and non-ASCII topics, fan-out."""

import fcntl
import os
import signal
import socket
import struct
import termios
import time

import pytest

import mqtt_raw as m
from harness import IS_MIDGE, assert_nothing_before_ping


def _fixed_header(total_body):
    return m.varint(total_body)


# Remaining Length boundaries of the Variable Byte Integer (spec 2.2.3 / 1.5.5)
BOUNDARIES = [127, 128, 16383, 16384, 2097151, 2097152]


@pytest.mark.parametrize("remaining", BOUNDARIES)
def test_remaining_length_boundaries_byte_exact(raw, remaining):
    """A PUBLISH whose Remaining Length sits on a varint boundary arrives at a QoS 0
    subscriber byte for byte (same topic, same payload, so the same Remaining Length)."""
    topic = "rl/t"
    payload_len = remaining - (2 + len(topic))
    payload = bytes((i * 7) & 0xFF for i in range(payload_len))
    pkt = m.publish(topic, payload)
    assert pkt[1:1 + len(m.varint(remaining))] == m.varint(remaining)
    s = raw("rl-s", timeout=20)
    s.subscribe([(topic, 0)])
    p = raw("rl-p", timeout=20)
    p.send(pkt)
    got = s.recv(timeout=20)
    assert got.raw == pkt


def test_varint_encodings_known_bytes():
    """The builder itself against the spec's table (2.2.3): guards the tests above."""
    assert m.varint(0) == b"\x00"
    assert m.varint(127) == b"\x7f"
    assert m.varint(128) == b"\x80\x01"
    assert m.varint(16383) == b"\xff\x7f"
    assert m.varint(16384) == b"\x80\x80\x01"
    assert m.varint(2097151) == b"\xff\xff\x7f"
    assert m.varint(2097152) == b"\x80\x80\x80\x01"
    assert m.varint(268435455) == b"\xff\xff\xff\x7f"


def test_non_minimal_remaining_length_accepted_or_closed(raw, broker):
    """1.5.5: "the encoded value MUST use the minimum number of bytes" is a sender rule; a
    server may accept 0x80 0x00-style encodings or close. It must not misparse: PINGREQ
    with Remaining Length encoded as 80 00 is either answered or the connection closed."""
    c = raw("nonmin")
    c.send(b"\xc0\x80\x00")
    if IS_MIDGE:  # midge reads the value (0), not the encoding: PINGRESP
        assert c.recv().raw == b"\xd0\x00"
        return
    try:
        p = c.recv()
    except m.Closed:
        return
    assert p.raw == b"\xd0\x00"


def test_packets_split_byte_by_byte(raw):
    """Every packet may arrive in pieces: CONNECT, SUBSCRIBE and PUBLISH sent one byte per
    write (TCP_NODELAY, small pauses) are handled as whole packets."""
    c = raw()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = m.connect("split") + m.subscribe(1, [("sp/t", 1)]) + m.publish("sp/t", b"hi",
                                                                        qos=1, pid=2)
    for i in range(len(data)):
        c.send(data[i:i + 1])
        if i % 8 == 0:
            time.sleep(0.002)
    assert c.recv().raw == b"\x20\x02\x00\x00"
    got = {}
    for _ in range(3):
        p = c.recv()
        got.setdefault(p.type, p)
    assert got[m.SUBACK].raw == b"\x90\x03\x00\x01\x01"
    assert got[m.PUBACK].raw == b"\x40\x02\x00\x02"
    assert got[m.PUBLISH].payload == b"hi"


def test_many_packets_in_one_write(raw):
    """A write holding CONNECT and 200 PUBLISH packets: all handled, in order."""
    s = raw("batch-s")
    s.subscribe([("batch/t", 1)])
    c = raw()
    data = m.connect("batch") + b"".join(
        m.publish("batch/t", b"%d" % i, qos=1, pid=i + 1) for i in range(200))
    c.send(data)
    assert c.recv().raw == b"\x20\x02\x00\x00"
    assert [c.expect(m.PUBACK).pid for _ in range(200)] == list(range(1, 201))
    assert [int(p.payload) for p in s.collect(200)] == list(range(200))


def test_burst_in_the_receive_buffer_larger_than_one_read(raw, broker):
    """A client's burst that lies whole in the broker's receive buffer, far more than the
    broker takes in one read (64 KiB), and nothing after it: all of it is handled. The broker
    is stopped (SIGSTOP) until the kernel holds every byte, so no further data, and with
    edge-triggered epoll (plain TCP) no further readiness, comes: the broker must go on
    reading by itself (net/loop.h mg_loop_again)."""
    n = 1900  # ~97 KB: the receive buffer of a connection not yet read from holds ~128 KB
    s = raw("burst-s", timeout=30)
    s.subscribe([("burst/t", 0)])
    c = raw("burst-p", timeout=30)
    data = b"".join(m.publish("burst/t", b"%06d" % i + b"." * 34) for i in range(n))
    data += m.publish("burst/q", b"end", qos=1, pid=7) + m.pingreq()
    assert len(data) > 65536 + 16384
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        c.sock.settimeout(10)
        c.sock.sendall(data)
        deadline = time.monotonic() + 10
        while struct.unpack("i", fcntl.ioctl(c.sock, termios.TIOCOUTQ, b"\0" * 4))[0]:
            assert time.monotonic() < deadline, "the burst never left the client's socket"
            time.sleep(0.01)  # polling the kernel's queue, not a timing threshold
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    assert c.expect(m.PUBACK).pid == 7
    assert c.expect(m.PINGRESP)
    got = s.collect(n)
    assert [int(p.payload[:6]) for p in got] == list(range(n))


@pytest.mark.threaded
def test_large_payload_to_slow_reader(raw):
    """A 2 MB payload to a subscriber with a small receive buffer that reads slowly: it
    arrives intact (the broker copes with partial writes)."""
    payload = bytes(range(256)) * (2 * 1024 * 1024 // 256)
    s = raw("slowr", rcvbuf=8192, timeout=30)
    s.subscribe([("big/t", 1)])
    p = raw("bigp", timeout=30)
    p.publish("big/t", payload, qos=1)
    buf = bytearray()
    deadline = time.monotonic() + 30
    need = None
    while time.monotonic() < deadline:
        s.sock.settimeout(5)
        chunk = s.sock.recv(4096)
        assert chunk, "closed while reading"
        buf += chunk
        if need is None and len(buf) >= 5:
            length, pos = m.decode_varint(buf, 1)
            need = pos + length
        if need is not None and len(buf) >= need:
            break
        time.sleep(0.0005)
    pkt = m.Packet(bytes(buf[:need]))
    assert pkt.type == m.PUBLISH and pkt.payload == payload


def test_long_topic_65535_bytes(raw):
    """[MQTT-4.7.3-3] Topic names up to 65535 bytes; matched by '#' and delivered intact."""
    topic = "a/b/" + "z" * 65531  # few levels: mosquitto caps the depth at 200 levels
    assert len(topic) == 65535
    s = raw("long-s")
    s.subscribe([("a/#", 0)])
    p = raw("long-p")
    p.publish(topic, b"L", qos=1)
    got = s.recv_publish()
    assert got.topic == topic and got.payload == b"L"


def test_utf8_topics_and_filters(raw):
    """UTF-8 topic levels are matched level by level like any other."""
    s = raw("u8-s")
    s.subscribe([("+/서울", 1), ("날씨/#", 1)])
    p = raw("u8-p")
    p.publish("날씨/서울", "맑음".encode(), qos=1)
    got = s.collect(1)[0]
    assert got.topic == "날씨/서울" and got.payload.decode() == "맑음"
    if IS_MIDGE:  # midge sends one copy for overlapping subscriptions (3.3.5 allows two)
        assert_nothing_before_ping(s)
        return
    try:  # a second copy for the second matching filter is allowed (3.3.5)
        extra = s.recv_publish(timeout=0.3)
        assert extra.topic == "날씨/서울"
    except TimeoutError:
        pass


@pytest.mark.threaded
def test_fan_out_50_subscribers_exact_bytes(raw):
    """One QoS 0 PUBLISH, 50 subscribers: each receives exactly the same bytes."""
    subs = []
    for i in range(50):
        c = raw("fo%d" % i)
        c.subscribe([("fan/t", 0)])
        subs.append(c)
    p = raw("fo-p")
    pkt = m.publish("fan/t", b"to everyone")
    p.send(pkt)
    for c in subs:
        assert c.recv().raw == pkt
