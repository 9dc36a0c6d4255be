"""Outgoing PUBLISH bytes around the broker's two ways of writing a payload: copied behind the
header (a message with one recipient and a payload of up to 256 bytes) or sent from the shared
message (several recipients, or a larger payload), and many packets merged into one output
segment (at most 64 KiB each). Whatever the way, each subscriber gets exactly the bytes a
3.1.1 PUBLISH of that topic and payload is, in order (bench/README.md, the cut)."""

import mqtt_raw as m

# 1..33: each branch of the copy's overlapping moves (session.c copy_small: 1-3, 4-7, 8-15,
# 16 and more, a 16-byte step and a tail)
SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 255, 256, 257, 1000, 70000]


def payload(size, i):
    return bytes((i + k) & 0xFF for k in range(size))


def test_payload_sizes_around_the_copy_limit(raw):
    """One subscriber on cp/one (copied when small), two on cp/two (shared): sizes across the
    256-byte limit and one larger than a merged segment, interleaved on both topics."""
    a, b = raw("cp-a"), raw("cp-b")
    a.subscribe([("cp/one", 0), ("cp/two", 0)])
    b.subscribe([("cp/two", 0)])
    pub = raw("cp-pub")
    want_a, want_b, burst = [], [], b""
    for i, size in enumerate(SIZES):
        one = m.publish("cp/one", payload(size, i))
        two = m.publish("cp/two", payload(size, i + 100))
        burst += one + two
        want_a += [one, two]
        want_b.append(two)
    pub.send(burst)
    assert [a.recv_raw() for _ in want_a] == want_a
    assert [b.recv_raw() for _ in want_b] == want_b


def test_a_burst_larger_than_a_merged_segment(raw):
    """2,000 small PUBLISHes for one subscriber in one write (about 420 KB of output, below
    the broker's 512 KiB output limit, so nothing waits in the session queue). The
    subscriber's small receive buffer keeps the broker's writes partial, so its output piles
    up over several loop turns into several 64 KiB segments: every packet whole and in
    order."""
    s = raw("burst-sub", rcvbuf=4096)
    s.subscribe([("burst/t", 0)])
    pub = raw("burst-pub")
    sent = [m.publish("burst/t", payload(200, i)) for i in range(2000)]
    pub.send(b"".join(sent))
    got = [s.recv_raw(timeout=20) for _ in sent]
    assert got == sent


def test_fan_in_bursts_past_the_output_limit(broker_factory, raw):
    """20 publishers each send 1,500 PUBLISHes of 150 bytes to one subscriber in one write
    (about 5 MB for it, 256 KiB of it in each loop turn's reads of four publishers), while
    the subscriber reads nothing at first: its output passes half of the 512 KiB limit within
    a turn and is written between two publishers' reads (conn.c mg_conn_flush_early), then
    its socket fills and the rest waits in its session queue. Every packet arrives whole, and
    each publisher's in the order sent."""
    b = broker_factory(extra=["max_queued_messages 100000"])
    sub = raw("fi-sub", port=b.port)
    sub.subscribe([("fi/+", 0)])
    pubs = [raw("fi-p%d" % k, port=b.port) for k in range(20)]
    sent = {}
    for k in range(len(pubs)):
        sent["fi/%d" % k] = [m.publish("fi/%d" % k, payload(150, i) + i.to_bytes(4, "big"))
                             for i in range(1500)]
    for k, p in enumerate(pubs):
        p.send(b"".join(sent["fi/%d" % k]))
    total = sum(len(x) for v in sent.values() for x in v)
    buf = bytearray(sub.buf)
    sub.sock.settimeout(30)
    while len(buf) < total:
        chunk = sub.sock.recv(1 << 20)
        assert chunk, "the broker closed the subscriber after %d of %d bytes" % (len(buf), total)
        buf += chunk
    got, pos = {}, 0
    while pos < len(buf):
        length, body = m.decode_varint(buf, pos + 1)
        pkt = bytes(buf[pos:body + length])
        tl = int.from_bytes(pkt[body - pos:body - pos + 2], "big")
        topic = pkt[body - pos + 2:body - pos + 2 + tl].decode()
        got.setdefault(topic, []).append(pkt)
        pos = body + length
    assert pos == total
    assert got == sent
