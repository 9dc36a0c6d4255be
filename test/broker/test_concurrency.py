"""Many clients at once: every message exactly once and in order per publisher, across the
broker's threads; connection churn and takeovers racing with traffic. These are the tests the
ThreadSanitizer pass leans on."""

import threading
import time

import pytest

import mqtt_raw as m
from harness import assert_broker_serves, assert_nothing_before_ping

PUBLISHERS = 6
SUBSCRIBERS = 6
MESSAGES = 150


@pytest.mark.threaded
def test_fan_in_fan_out_qos1_exactly_once_in_order(broker):
    """[MQTT-4.6.0-6] per-publisher order, QoS 1 to QoS 1 subscriptions: each subscriber gets
    every message; duplicates are allowed only with DUP set (none expected on a stable
    connection)."""
    subs = []
    for i in range(SUBSCRIBERS):
        c = m.RawClient(broker.port, timeout=20)
        c.connect("cs%d" % i)
        c.subscribe([("conc/+", 1)])
        subs.append(c)
    results = [None] * SUBSCRIBERS
    errors = []

    def consume(i):
        try:
            got = subs[i].collect(PUBLISHERS * MESSAGES, timeout=60)
            results[i] = [(p.topic, int(p.payload)) for p in got]
        except Exception as e:  # reported below
            errors.append("subscriber %d: %r" % (i, e))

    def produce(j):
        c = m.RawClient(broker.port, timeout=20)
        try:
            c.connect("cp%d" % j)
            for k in range(MESSAGES):
                c.send(m.publish("conc/%d" % j, b"%d" % k, qos=1, pid=k + 1))
            acks = [c.expect(m.PUBACK).pid for _ in range(MESSAGES)]
            assert acks == list(range(1, MESSAGES + 1))
            c.disconnect()
        except Exception as e:
            errors.append("publisher %d: %r" % (j, e))

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(SUBSCRIBERS)]
    threads += [threading.Thread(target=produce, args=(j,)) for j in range(PUBLISHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors
    for i, res in enumerate(results):
        assert res is not None
        for j in range(PUBLISHERS):
            seq = [k for topic, k in res if topic == "conc/%d" % j]
            assert seq == list(range(MESSAGES)), "subscriber %d, publisher %d" % (i, j)
    for c in subs:
        c.close()


@pytest.mark.threaded
def test_connection_churn_and_takeover_races(broker):
    """Clients connecting, subscribing, publishing and vanishing (some with the same id, so
    takeovers race) while a steady subscriber keeps receiving."""
    steady = m.RawClient(broker.port, timeout=10)
    steady.connect("steady")
    steady.subscribe([("churn/#", 0)])
    errors = []
    stop = time.monotonic() + 4

    def churn(n):
        i = 0
        while time.monotonic() < stop:
            try:
                c = m.RawClient(broker.port, timeout=5)
                c.connect("churn-%d" % (i % 3), clean=bool(i % 2),
                          will=dict(topic="churn/will", payload=b"w"))
                c.subscribe([("churn/x/%d" % n, 1)])
                c.send(m.publish("churn/x/%d" % n, b"p", qos=1, pid=2))
                if i % 3 == 0:
                    c.abort()
                else:
                    c.disconnect()
            except (m.Closed, OSError, TimeoutError, AssertionError):
                pass  # taken over by a sibling thread: expected
            except Exception as e:
                errors.append(repr(e))
            i += 1

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    received = 0
    while any(t.is_alive() for t in threads):
        try:
            steady.recv_publish(timeout=0.2)
            received += 1
        except TimeoutError:
            pass
    for t in threads:
        t.join(10)
    assert not errors, errors
    assert received > 0
    steady.send(m.pingreq())
    while True:  # drain what is left, then the PINGRESP
        p = steady.recv(timeout=5)
        if p.type == m.PINGRESP:
            break
    assert_broker_serves(broker.port)
    steady.close()


@pytest.mark.threaded
def test_takeover_of_persistent_session_keeps_inflight(broker):
    """[MQTT-3.1.4-2] + [MQTT-4.4.0-1]: a takeover (old connection still open) of a
    persistent session: SP 1, the unacknowledged QoS 1 message is resent with DUP, and
    messages published after the takeover arrive on the new connection only."""
    old = m.RawClient(broker.port)
    old.connect("tko", clean=False)
    old.subscribe([("tko/t", 1)])
    pub = m.RawClient(broker.port)
    pub.connect("tko-p")
    pub.publish("tko/t", b"first", qos=1, pid=1)
    first = old.recv_publish(ack=False)
    new = m.RawClient(broker.port)
    new.send(m.connect("tko", clean=False))
    assert new.recv().raw == b"\x20\x02\x01\x00"
    old.expect_closed()
    again = new.expect(m.PUBLISH)
    assert (again.dup, again.pid, again.payload) == (True, first.pid, b"first")
    new.send(m.puback(again.pid))
    pub.publish("tko/t", b"second", qos=1, pid=2)
    assert new.recv_publish().payload == b"second"
    assert_nothing_before_ping(new)
    for c in (old, new, pub):
        c.close()


@pytest.mark.threaded
def test_shared_subscription_member_leaves(broker):
    """5.0 4.8.2: when a member of a share group unsubscribes, the rest get everything."""
    a = m.RawClient(broker.port, version=5)
    b = m.RawClient(broker.port, version=5)
    a.connect("shl-a")
    b.connect("shl-b")
    a.subscribe([("$share/g/shl/t", 1)])
    b.subscribe([("$share/g/shl/t", 1)])
    b.send(m.unsubscribe(7, ["$share/g/shl/t"], version=5))
    assert b.expect(m.UNSUBACK).codes == [0]
    p = m.RawClient(broker.port, version=5)
    p.connect("shl-p")
    for i in range(10):
        p.publish("shl/t", b"%d" % i, qos=1, pid=i + 1)
    assert sorted(int(x.payload) for x in a.collect(10)) == list(range(10))
    assert_nothing_before_ping(p, b)
    for c in (a, b, p):
        c.close()
