"""Interop with python3-paho-mqtt 1.6 (Debian): the lecture's programs and scenarios."""

import os
import queue
import textwrap
import time

import pytest

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes


class PahoClient:
    """A paho client with its callbacks recorded into queues; loop_start()ed."""

    def __init__(self, port, client_id="", clean_session=True, protocol=mqtt.MQTTv311,
                 will=None, connect=True, keepalive=60, properties=None):
        kw = {}
        if protocol != mqtt.MQTTv5:
            kw["clean_session"] = clean_session
        self.c = mqtt.Client(client_id=client_id, protocol=protocol, **kw)
        self.protocol = protocol
        self.port = port
        self.messages = queue.Queue()
        self.events = queue.Queue()
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda c, u, mid, *a: self.events.put(("subscribe", mid, a))
        self.c.on_publish = lambda c, u, mid: self.events.put(("publish", mid))
        self.c.on_disconnect = lambda c, u, rc, *a: self.events.put(("disconnect", rc))
        self.c.on_message = lambda c, u, msg: self.messages.put(msg)
        if will:
            self.c.will_set(**will)
        if connect:
            self.connect(keepalive, clean_session, properties)

    def _on_connect(self, c, u, flags, rc, *a):
        self.events.put(("connect", flags, rc))

    def connect(self, keepalive=60, clean_start=True, properties=None):
        kw = {}
        if self.protocol == mqtt.MQTTv5:
            kw["clean_start"] = clean_start
            kw["properties"] = properties
        self.c.connect("127.0.0.1", self.port, keepalive, **kw)
        self.c.loop_start()
        ev = self.event("connect")
        assert ev[2] == 0, "connect refused: %r" % (ev,)
        return ev

    def event(self, kind, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError("paho callback on_%s not called in %.0f s" % (kind, timeout))
            if ev[0] == kind:
                return ev

    def subscribe(self, topic, qos=0, **kw):
        rc, mid = self.c.subscribe(topic, qos, **kw)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        ev = self.event("subscribe")
        assert ev[1] == mid
        return ev

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.c.publish(topic, payload, qos, retain, properties=properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS
        ev = self.event("publish")
        assert ev[1] == info.mid
        return info

    def message(self, timeout=5.0):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message arrived in %.0f s" % timeout)

    def no_message(self, timeout=0.5):
        try:
            m = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError("unexpected message on %s: %r" % (m.topic, m.payload))

    def stop(self, clean=True):
        if clean:
            self.c.disconnect()
            self.event("disconnect")
        self.c.loop_stop()


@pytest.fixture
def paho(broker):
    made = []

    def make(*a, **kw):
        c = PahoClient(broker.port, *a, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        try:
            c.c.disconnect()
        except Exception:
            pass
        c.c.loop_stop()


@pytest.mark.threaded
def test_chat_on_letter_utf8_arrives_intact(paho):
    """The lecture's chat: UTF-8 text on `letter` arrives byte for byte."""
    alice = paho("alice")
    bob = paho("bob")
    alice.subscribe("letter")
    bob.subscribe("letter")
    text = "즐거운 날입니다."
    bob.publish("letter", text.encode("utf-8"))
    for c in (alice, bob):
        m = c.message()
        assert m.topic == "letter"
        assert m.payload.decode("utf-8") == text
    alice.publish("letter", "안녕하세요, bob")
    assert bob.message().payload.decode("utf-8") == "안녕하세요, bob"
    alice.stop()
    bob.stop()


@pytest.mark.threaded
def test_integer_temperatures_on_room_temp(paho):
    sub = paho("display")
    sub.subscribe("room/temp")
    sensor = paho("sensor")
    temps = [18, 19, 21, -3, 25, 30]
    for t in temps:
        sensor.publish("room/temp", str(t))
    got = [int(sub.message().payload) for _ in temps]
    assert got == temps  # one publisher, one topic: order kept
    sensor.stop()
    sub.stop()


SENSOR_PROGRAM = textwrap.dedent('''
    import sys, threading, time
    import paho.mqtt.client as mqtt
    running = threading.Event()
    stop_all = threading.Event()
    def publisher(c):
        n = 0
        while not stop_all.is_set():
            if running.is_set():
                c.publish("room/temp", str(20 + n))
                n += 1
            stop_all.wait(2)
    def on_connect(c, u, f, rc):
        c.subscribe("command")
    def on_subscribe(c, u, mid, q):
        print("ready", flush=True)
    def on_message(c, u, msg):
        cmd = msg.payload.decode()
        if cmd == "start":
            running.set()
        elif cmd == "stop":
            running.clear()
        elif cmd == "quit":
            stop_all.set()
        print("command", cmd, flush=True)
    c = mqtt.Client("sensor")
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect("127.0.0.1", int(sys.argv[1]), 60)
    c.loop_start()
    t = threading.Thread(target=publisher, args=(c,))
    t.start()
    stop_all.wait(60)
    t.join()
    c.disconnect()
    c.loop_stop()
''')


@pytest.mark.threaded
def test_command_start_stop_drives_publisher_thread(broker, paho, procs, tmp_path):
    """`start`/`stop` on `command` switch a program's publisher thread (every 2 s)."""
    prog = tmp_path / "sensor.py"
    prog.write_text(SENSOR_PROGRAM)
    display = paho("display")
    display.subscribe("room/temp")
    sensor = procs(["/usr/bin/python3", str(prog), str(broker.port)])
    sensor.wait_out("^ready$", 10)
    ctl = paho("controller")
    display.no_message(0.5)
    ctl.publish("command", "start", qos=1)
    first = display.message(5)
    second = display.message(5)
    assert int(second.payload) == int(first.payload) + 1
    ctl.publish("command", "stop", qos=1)
    sensor.wait_out("^command stop$", 5)
    while True:  # at most one message may have been in flight when stop arrived
        try:
            display.messages.get(timeout=0.1)
        except queue.Empty:
            break
    display.no_message(2.5)
    ctl.publish("command", "quit", qos=1)
    assert sensor.wait(10) == 0
    ctl.stop()
    display.stop()


@pytest.mark.threaded
def test_jpeg_300kb_binary_payload_byte_identical(paho):
    """The lecture's image transfer: a 300 KB binary payload on `jpeg`."""
    data = b"\xff\xd8\xff\xe0" + os.urandom(300 * 1024 - 4) + b"\x00\xff\xd9"
    viewer = paho("viewer")
    viewer.subscribe("jpeg", 1)
    camera = paho("camera")
    camera.publish("jpeg", data, qos=1)
    m = viewer.message(10)
    assert m.topic == "jpeg"
    assert len(m.payload) == len(data)
    assert m.payload == data
    camera.stop()
    viewer.stop()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5],
                         ids=["v31", "v311", "v5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_qos_levels_callbacks(paho, protocol, qos):
    """on_connect / on_subscribe / on_publish / on_message / on_disconnect for each QoS."""
    sub = paho("qsub", protocol=protocol)
    ev = sub.subscribe("q/#", qos)
    granted = ev[2][0]
    if protocol == mqtt.MQTTv5:
        assert granted[0].value == qos  # reason code == granted QoS
    else:
        assert granted[0] == qos
    pub = paho("qpub", protocol=protocol)
    pub.publish("q/x", b"payload-%d" % qos, qos=qos)
    m = sub.message()
    assert (m.topic, m.payload, m.qos) == ("q/x", b"payload-%d" % qos, qos)
    pub.stop()
    sub.stop()


@pytest.mark.threaded
def test_retained_with_paho(paho):
    p = paho("rpub")
    p.publish("ret/a", "first", qos=1, retain=True)
    p.publish("ret/a", "second", qos=1, retain=True)  # replaces
    s = paho("rsub")
    s.subscribe("ret/#", 1)
    m = s.message()
    assert (m.payload, m.retain) == (b"second", 1)
    s.no_message(0.3)
    p.publish("ret/a", "live", qos=1, retain=True)
    m = s.message()
    assert m.payload == b"live"
    assert m.retain == 0  # 3.1.1: retain is 0 on delivery to an existing subscription
    p.publish("ret/a", b"", qos=1, retain=True)  # deletes
    s.message()  # the empty message itself is forwarded
    s2 = paho("rsub2")
    s2.subscribe("ret/#", 1)
    s2.no_message(0.5)
    for c in (p, s, s2):
        c.stop()


def test_will_with_paho(broker, paho):
    watcher = paho("watcher")
    watcher.subscribe("status/+", 1)
    dying = paho("dying", will=dict(topic="status/dying", payload="offline", qos=1,
                                    retain=True))
    # kill the socket under paho's feet: no DISCONNECT is sent
    dying.c.loop_stop()
    dying.c.socket().close()
    m = watcher.message(5)
    assert (m.topic, m.payload) == ("status/dying", b"offline")
    late = paho("late")
    late.subscribe("status/+", 1)
    m = late.message()
    assert (m.payload, m.retain) == (b"offline", 1)  # will retain
    watcher.stop()
    late.stop()


@pytest.mark.threaded
@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["v311", "v5"])
def test_persistent_session_with_paho(paho, protocol):
    props = None
    if protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
    s = paho("keeper", clean_session=False, protocol=protocol, properties=props)
    s.subscribe("pers/t", 2)
    s.stop()
    p = paho("pp", protocol=protocol)
    for i in range(5):
        p.publish("pers/t", "msg%d" % i, qos=2 if i % 2 else 1)
    s2 = paho("keeper", clean_session=False, protocol=protocol, connect=False)
    ev = s2.connect(clean_start=False, properties=props)
    flags = ev[1]
    assert flags["session present"] == 1
    got = [s2.message().payload for _ in range(5)]
    # ordering is promised per QoS level (spec 4.6), not across QoS 1 and QoS 2
    assert sorted(got) == [b"msg%d" % i for i in range(5)]
    assert [g for g in got if int(g[3:]) % 2] == [b"msg1", b"msg3"]
    assert [g for g in got if not int(g[3:]) % 2] == [b"msg0", b"msg2", b"msg4"]
    s2.stop()
    p.stop()


def test_v5_properties_pass_through_paho(paho):
    s = paho("v5sub", protocol=mqtt.MQTTv5)
    s.subscribe("req/x", 1)
    p = paho("v5pub", protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "resp/x"
    props.CorrelationData = b"\x01\x02corr"
    props.ContentType = "text/plain"
    props.PayloadFormatIndicator = 1
    props.UserProperty = [("k1", "v1"), ("k2", "v2")]
    p.publish("req/x", "body", qos=1, properties=props)
    m = s.message()
    mp = m.properties
    assert mp.ResponseTopic == "resp/x"
    assert mp.CorrelationData == b"\x01\x02corr"
    assert mp.ContentType == "text/plain"
    assert mp.PayloadFormatIndicator == 1
    assert mp.UserProperty == [("k1", "v1"), ("k2", "v2")]  # order kept [MQTT-3.3.2-18]
    s.stop()
    p.stop()
