"""Queue and in-flight limits: max_queued_messages, max_queued_bytes, queue_qos0_messages
for offline persistent sessions, drops counted in $SYS and logged once per episode,
max_inflight_messages and the 5.0 Receive Maximum.

mosquitto.conf(5): "max_queued_messages count: The maximum number of QoS 1 or 2 messages to
hold in the queue (per client) above those messages that are currently in flight";
"max_queued_bytes: QoS 1 and 2 messages above those currently in-flight will be queued (per
client) until this limit is exceeded"; when the queue is full mosquitto drops the *new*
message (the oldest are kept and delivered in order).
"""

import re
import time

import pytest

import mqtt_raw as m
from harness import IS_MIDGE, assert_nothing_before_ping


def _offline_session(port, cid, topic, qos=1, version=4):
    """A persistent session subscribed to topic, then offline."""
    c = m.RawClient(port, version=version)
    if version == 5:
        c.connect(cid, clean=False, properties=[(m.P_SESSION_EXPIRY, 300)])
    else:
        c.connect(cid, clean=False)
    c.subscribe([(topic, qos)])
    c.disconnect()


def _publish_all(port, topic, payloads, qos=1):
    p = m.RawClient(port)
    p.connect("pub-" + topic.replace("/", "-"))
    for i, pl in enumerate(payloads):
        if qos:
            p.publish(topic, pl, qos=qos, pid=i + 1)
        else:
            p.send(m.publish(topic, pl))
    # a QoS 1 round trip on the same connection: every QoS 0 publish above is routed
    p.publish("sync/" + topic, b"", qos=1, pid=999)
    p.disconnect()


def _reconnect_and_drain(port, cid, quiet=0.6):
    """Reconnects the persistent session and returns the payloads it receives (acked)."""
    c = m.RawClient(port)
    ack = c.connect(cid, clean=False)
    assert ack.session_present == 1
    got = []
    try:
        while True:
            got.append(c.recv_publish(timeout=quiet).payload)
    except TimeoutError:
        pass
    c.disconnect()
    return got


@pytest.mark.threaded
def test_max_queued_messages_offline_keeps_oldest_n(broker_factory):
    """max_queued_messages 3, offline QoS 1 session, 10 messages: on reconnect exactly the
    3 oldest arrive, in order (mosquitto drops new messages once the queue is full)."""
    b = broker_factory(extra=["max_queued_messages 3"])
    _offline_session(b.port, "mq3", "mq3/t")
    _publish_all(b.port, "mq3/t", [b"%d" % i for i in range(10)])
    assert _reconnect_and_drain(b.port, "mq3") == [b"0", b"1", b"2"]


def test_max_queued_bytes_offline(broker_factory):
    """max_queued_bytes 12 (payload bytes), 4-byte payloads: 3 messages fit (12 bytes), the
    rest are dropped; the oldest arrive in order."""
    b = broker_factory(extra=["max_queued_bytes 12"])
    _offline_session(b.port, "mqb", "mqb/t")
    _publish_all(b.port, "mqb/t", [b"p%03d" % i for i in range(8)])
    assert _reconnect_and_drain(b.port, "mqb") == [b"p000", b"p001", b"p002"]


def test_max_queued_bytes_until_exceeded(broker_factory):
    """mosquitto.conf(5) max_queued_bytes: messages "will be queued ... until this limit is
    exceeded": with a 10-byte limit and 4-byte payloads, mosquitto queues 3 (4, 8, 12: the
    third is accepted because 8 < 10)."""
    b = broker_factory(extra=["max_queued_bytes 10"])
    _offline_session(b.port, "mqx", "mqx/t")
    _publish_all(b.port, "mqx/t", [b"q%03d" % i for i in range(6)])
    assert _reconnect_and_drain(b.port, "mqx") == [b"q000", b"q001", b"q002"]


@pytest.mark.parametrize("queue_qos0", [False, True], ids=["q0-false", "q0-true"])
def test_queue_qos0_messages(broker_factory, queue_qos0):
    """queue_qos0_messages: "Set to true to queue messages with QoS 0 when a persistent
    client is disconnected" (default false): the QoS 0 message is kept or not; the QoS 1
    message always is."""
    extra = ["queue_qos0_messages %s" % ("true" if queue_qos0 else "false")]
    b = broker_factory(extra=extra)
    _offline_session(b.port, "mq0", "mq0/t")
    p = m.RawClient(b.port)
    p.connect("mq0-pub")
    p.send(m.publish("mq0/t", b"zero"))
    p.publish("mq0/t", b"one", qos=1, pid=2)
    p.disconnect()
    got = _reconnect_and_drain(b.port, "mq0")
    assert got == ([b"zero", b"one"] if queue_qos0 else [b"one"])


@pytest.mark.threaded
def test_drops_counted_in_sys_and_logged_once(broker_factory):
    """Drops of an offline session's full queue are counted in
    $SYS/broker/publish/messages/dropped and logged once for the episode, as mosquitto:
    "Outgoing messages are being dropped for client ID."."""
    b = broker_factory(extra=["max_queued_messages 2", "sys_interval 1"])
    _offline_session(b.port, "mqd", "mqd/t")
    _publish_all(b.port, "mqd/t", [b"%d" % i for i in range(7)])
    r = m.RawClient(b.port)
    r.connect("mqd-sys")
    r.subscribe([("$SYS/broker/publish/messages/dropped", 0)])
    deadline = time.monotonic() + 4
    val = None
    while time.monotonic() < deadline and val != 5:
        try:
            val = int(r.recv_publish(timeout=0.5).payload)
        except TimeoutError:
            pass
    assert val == 5, "publish/messages/dropped = %r" % val
    r.close()
    b.wait_log(r"Outgoing messages are being dropped for client mqd\.")
    lines = re.findall(r"Outgoing messages are being dropped for client mqd\.", b.log())
    assert len(lines) == 1, lines
    assert _reconnect_and_drain(b.port, "mqd") == [b"0", b"1"]


def test_drop_log_once_per_episode_each_episode(broker_factory):
    """An episode ends when the queue has drained: a second episode of drops (after the
    client reconnected and took its queue) is logged again, once (mosquitto 2.0.11)."""
    b = broker_factory(extra=["max_queued_messages 2"])
    _offline_session(b.port, "mqe", "mqe/t")
    for _ in range(2):
        _publish_all(b.port, "mqe/t", [b"%d" % i for i in range(5)])
        assert _reconnect_and_drain(b.port, "mqe") == [b"0", b"1"]
    # the log thread may trail the sockets: wait for the second line, then check for a third
    b.wait_log(r"Outgoing messages are being dropped for client mqe\.", count=2)
    lines = re.findall(r"Outgoing messages are being dropped for client mqe\.", b.log())
    assert len(lines) == 2, lines


@pytest.mark.threaded
@pytest.mark.mosquitto_xfail("after the first PUBACK sends two more: three in flight")
def test_max_inflight_messages_window(broker_factory):
    """max_inflight_messages 2: a 3.1.1 subscriber that does not acknowledge has only 2
    QoS 1 PUBLISH in flight; each PUBACK lets the next one out, in order [MQTT-4.6.0-2]."""
    b = broker_factory(extra=["max_inflight_messages 2"])
    s = m.RawClient(b.port)
    s.connect("infl")
    s.subscribe([("infl/t", 1)])
    _publish_all(b.port, "infl/t", [b"%d" % i for i in range(5)])
    first = [s.recv_publish(ack=False) for _ in range(2)]
    assert [p.payload for p in first] == [b"0", b"1"]
    assert_nothing_before_ping(s)  # the publisher had its PUBACKs: all three routed
    s.send(m.puback(first[0].pid))
    third = s.recv_publish(ack=False)
    assert third.payload == b"2"
    assert_nothing_before_ping(s)
    s.send(m.puback(first[1].pid))
    s.send(m.puback(third.pid))
    assert [p.payload for p in s.collect(2)] == [b"3", b"4"]
    assert_nothing_before_ping(s)
    s.close()


@pytest.mark.threaded
def test_receive_maximum_1_one_at_a_time(broker_factory):
    """[MQTT-3.3.4-9] A 5.0 client with Receive Maximum 1 has at most one unacknowledged
    QoS 1 PUBLISH; the next is sent only after the PUBACK."""
    b = broker_factory()
    s = m.RawClient(b.port, version=5)
    s.connect("rm1", version=5, properties=[(m.P_RECEIVE_MAXIMUM, 1)])
    s.subscribe([("rm1/t", 1)], version=5)
    _publish_all(b.port, "rm1/t", [b"%d" % i for i in range(3)])
    for i in range(3):
        p = s.recv_publish(ack=False)
        assert p.payload == b"%d" % i
        assert_nothing_before_ping(s)
        s.send(m.puback(p.pid, version=5))
    s.close()
