"""A slow log never freezes the broker (issue 8, item 3).

With -v every PUBLISH is a log line. When stderr is a pipe nobody reads (or a terminal paused
with Ctrl-S), a broker that writes its log from the workers stops as soon as the pipe is full:
no SUBACK, no PUBACK, no PINGRESP for anyone, and SIGTERM cannot finish. midge caps a line at
999 bytes (as mosquitto does), clips long topics inside it, queues lines for a log thread and
drops (and counts) what does not fit.

The broker's stdout and stderr go to a pipe that the test does not read (Broker(unread_pipe=
True)): a Linux pipe holds 64 KiB. The flood below makes about 1.4 MB of log lines (each
PUBLISH gives a "Received PUBLISH" line of ~850 bytes and a "Sending PUBACK" line of ~550,
with a 500-byte client id and a 64 KiB topic), more than twice what the pipe and midge's
512 KiB queue hold together, so lines must be dropped.
"""

import re
import threading
import time

import pytest

from harness import Broker
from mqtt_raw import PINGRESP, PUBACK, PUBLISH, RawClient, pingreq, publish

pytestmark = pytest.mark.midge_only  # mosquitto 2.0.11 writes its log from its only thread

TOPIC = "t" * 65535          # the longest topic MQTT allows
FLOODERS = 2                 # two clients: with threads 2, likely one per worker
PER_CLIENT = 500
ID_LEN = 500


def flood(port, n):
    """A client with a long id sends PER_CLIENT QoS 1 PUBLISHes on a 64 KiB topic back to back,
    then waits for every PUBACK: the broker has handled (and logged) them all."""
    # Each read waits up to 60 s: a broker frozen by its log never answers again, while a
    # busy machine running this under ThreadSanitizer (1,000 PUBLISHes of 64 KiB topics) once
    # left 20 s between two PUBACKs.
    c = RawClient(port, timeout=60.0)
    try:
        c.connect(("flood%d-" % n).ljust(ID_LEN, "x"))
        batch = b"".join(publish(TOPIC, b"%02d" % n, qos=1, pid=i + 1) for i in range(PER_CLIENT))
        c.send(batch)
        acked = set()
        while len(acked) < PER_CLIENT:
            acked.add(c.expect(PUBACK).pid)
        c.send(pingreq())
        c.expect(PINGRESP)
    finally:
        c.close()


def flood_then_check_others(b):
    errors = []

    def run(n):
        try:
            flood(b.port, n)
        except Exception as e:  # reported below, in the test's thread
            errors.append("flood client %d: %r" % (n, e))

    ts = [threading.Thread(target=run, args=(n,)) for n in range(FLOODERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in ts), "flood clients still running"
    assert not errors, errors

    # The log is stuck now (1.4 MB made, nobody read). Other clients are still served.
    w = RawClient(b.port, timeout=20.0)
    try:
        w.connect("witness")
        w.subscribe([("witness/+", 1)], pid=7)           # SUBACK checked by subscribe()
        w.send(publish("witness/x", b"alive", qos=1, pid=8))
        got = {}
        for _ in range(2):
            p = w.recv()
            got[p.type] = p
        assert got[PUBACK].pid == 8
        assert got[PUBLISH].payload == b"alive"
        w.send(pingreq())
        w.expect(PINGRESP)
    finally:
        w.close()


def lines_of(text):
    lines = text.split("\n")
    return lines[:-1], lines[-1]  # whole lines, and what follows the last newline


@pytest.mark.threaded  # the TSan pass: workers and the log thread share the queue
def test_stuck_log_pipe_does_not_stop_the_broker_and_drops_are_counted(tmp_path, threads):
    b = Broker(tmp_path, threads=threads, unread_pipe=True)
    try:
        flood_then_check_others(b)
        b.read_pipe()  # output resumes: the count of what was lost follows
        deadline = time.monotonic() + 60
        rx = re.compile(r"^\d+: Warning: (\d+) log lines were dropped", re.M)
        while not rx.search(b.log()):
            assert time.monotonic() < deadline, "no dropped-lines count in:\n" + b.log()[-3000:]
            time.sleep(0.05)
    finally:
        b.stop()  # exit status 0, no sanitizer report
    text = b.log()
    whole, tail = lines_of(text)
    assert tail == ""
    long_lines = [len(x) for x in whole if len(x) > 999]
    assert not long_lines, "lines over 999 bytes (+ newline): %r" % long_lines[:5]
    dropped = sum(int(m.group(1)) for m in rx.finditer(text))
    assert dropped > 0
    # the topic is clipped inside the line, so the line still ends with the payload size
    clipped = re.compile(r"^\d+: Received PUBLISH from flood[01]-x{%d} \(d0, q1, r0, m\d+, "
                         r"'t{256}\.\.\.', \.\.\. \(2 bytes\)\)$" % (ID_LEN - 7), re.M)
    assert clipped.search(text), text[:3000]
    assert re.search(r"^\d+: midge version \S+ terminating$", text, re.M)


def test_sigterm_finishes_while_the_log_pipe_is_never_read(tmp_path, threads):
    b = Broker(tmp_path, threads=threads, unread_pipe=True)
    try:
        flood_then_check_others(b)
    finally:
        # Harness: SIGTERM, then exit status 0 within 10 s, without reading the pipe first
        # (it is read only once the broker has exited).
        b.stop()
    whole, tail = lines_of(b.log())
    assert whole, "nothing in the pipe"
    assert all(len(x) <= 999 for x in whole)
    assert len(tail) <= 999  # a write may have been cut by the full pipe
    assert re.match(r"^\d+: midge version \S+ starting$", whole[0])


def test_long_filters_and_topics_are_clipped_so_the_line_ends_whole(broker_factory):
    """A 2,000-byte filter or topic is shown by its first 256 bytes and "...", so what follows
    it in the line (the QoS of a SUBSCRIBE, the size of a dropped PUBLISH) survives the 999-byte
    cap. Every line naming the long name is checked, in SUBSCRIBE, UNSUBSCRIBE, a PUBLISH over
    message_size_limit and a PUBLISH to $SYS."""
    from mqtt_raw import UNSUBACK, RawClient, publish, unsubscribe
    b = broker_factory(extra=["message_size_limit 4", "log_type all"])
    long_f = "f/" + "x" * 2000
    c = RawClient(b.port)
    c.connect("clipper")
    c.subscribe([(long_f, 1)])
    c.send(unsubscribe(2, [long_f]))
    c.expect(UNSUBACK)
    c.send(publish("p/" + "y" * 2000, b"12345", qos=1, pid=7))  # over the limit: dropped
    c.send(publish("$SYS/" + "z" * 2000, b"1", qos=1, pid=8))   # denied
    assert [c.expect(PUBACK).pid for _ in range(2)] == [7, 8]  # both acknowledged, not routed
    c.close()
    b.wait_log(r"Denied PUBLISH")
    lines = [l for l in b.log().splitlines() if "xxxx" in l or "yyyy" in l or "zzzz" in l]
    head = "x" * (256 - 2)
    assert any(l.endswith("\tf/" + head + "... (QoS 1)") for l in lines), lines
    assert any(l.endswith("clipper 1 f/" + head + "...") for l in lines), lines
    assert any(l.endswith("\tf/" + head + "...") for l in lines), lines
    assert any("Dropped too large PUBLISH from clipper" in l and l.endswith("... (5 bytes))")
               for l in lines), lines
    assert any("Denied PUBLISH from clipper" in l and l.endswith("... (1 bytes))") for l in lines), lines
    assert all(len(l) < 600 for l in lines), [len(l) for l in lines]
