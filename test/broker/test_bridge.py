"""Bridges (issue 12): the broker under test as the far end of a bridge.

A mosquitto bridge sets 0x80 in the CONNECT protocol level of 3.1 / 3.1.1 (try_private, not in
the standard) and expects the broker to accept it and never send the bridge its own messages
back: two brokers bridged both ways would otherwise pass each message to and fro forever.
mosquitto's broker does this by giving every subscription of such a connection No Local and
Retain As Published (handle_subscribe.c); midge does the same.

The tests run against Debian's mosquitto 2.0.11 too (MIDGE_TEST_BROKER=mosquitto), which
shows the expected behaviour is mosquitto's own.
"""

import os
import socket
import time

import pytest

from mqtt_raw import CONNACK, RawClient, connect
from lib.harness import assert_nothing_before_ping, assert_nothing_before_sentinel, free_port

MOSQUITTO = "/usr/sbin/mosquitto"


# ---- the far end, byte by byte

@pytest.mark.parametrize("level,name", [(0x84, "MQTT"), (0x83, "MQIsdp")])
def test_bridge_bit_accepted(broker, level, name):
    """CONNECT with level 0x84 (3.1.1) or 0x83 (3.1) is accepted: CONNACK 20 02 00 00."""
    c = RawClient(broker.port)
    try:
        c.send(connect("far-bridge", version=level, proto_name=name))
        p = c.expect(CONNACK)
        assert p.raw == bytes([0x20, 0x02, 0x00, 0x00])
    finally:
        c.close()


@pytest.mark.midge_only
def test_bridge_bit_on_5_refused(broker):
    """0x85 is not a bridge level: a 5.0 bridge uses No Local, and mosquitto's bridge never
    sets the bit on 5.0 (lib/send_connect.c). Refused as an unknown level (CONNACK 0x01 in
    3.1.1 form). mosquitto 2.0.11's broker masks the bit off and takes it as 5.0."""
    c = RawClient(broker.port)
    try:
        c.send(_connect_raw_level(0x85))
        p = c.expect(CONNACK)
        assert p.raw == bytes([0x20, 0x02, 0x00, 0x01])
        c.expect_closed()
    finally:
        c.close()


def _connect_raw_level(level):
    """A 3.1.1-shaped CONNECT (no properties) with any level byte."""
    return connect("far-bridge5", version=0x04)[:8] + bytes([level]) + \
        connect("far-bridge5", version=0x04)[9:]


@pytest.mark.parametrize("level,name", [(0x84, "MQTT"), (0x83, "MQIsdp")])
def test_bridge_gets_no_echo(broker, level, name):
    """A bridge subscribed to '#' does not get back what it published; a plain client's
    message still reaches it. The sentinel from the plain client must be the bridge's next
    PUBLISH: an echo of its own message would have been queued before it."""
    br, pub, sub = RawClient(broker.port), RawClient(broker.port), RawClient(broker.port)
    try:
        br.send(connect("far-bridge", version=level, proto_name=name))
        br.expect(CONNACK)
        br.version = 4
        pub.connect("plain-pub")
        sub.connect("plain-sub")
        br.subscribe([("#", 1)])
        sub.subscribe([("#", 1)])
        br.publish("room/t", b"21.5", qos=1)
        p = sub.recv_publish()
        assert (p.topic, p.payload) == ("room/t", b"21.5")
        # the plain publisher's message reaches the bridge, and is its next PUBLISH
        assert_nothing_before_sentinel(br, pub, "room/sentinel")
        assert sub.recv_publish().payload == b"sentinel"
        assert_nothing_before_ping(br, pub, sub)
    finally:
        for c in (br, pub, sub):
            c.close()


def test_plain_client_gets_own_message(broker):
    """The control: without the bridge bit a 3.1.1 client does get its own message back."""
    c = RawClient(broker.port)
    try:
        c.connect("plain-self")
        c.subscribe([("#", 1)])
        c.publish("room/t", b"x", qos=0)
        p = c.recv_publish()
        assert (p.topic, p.payload) == ("room/t", b"x")
    finally:
        c.close()


def test_bridge_retain_as_published(broker):
    """A bridge's subscription sees the retain flag as published (a 3.1.1 client gets 0 on
    live messages): the far broker must store it retained too."""
    br = RawClient(broker.port)
    pub = RawClient(broker.port)
    try:
        br.send(connect("far-bridge-rap", version=0x84))
        br.expect(CONNACK)
        pub.connect("rap-pub")
        br.subscribe([("rap/#", 1)])
        pub.publish("rap/x", b"kept", qos=1, retain=True)
        p = br.recv_publish()
        assert (p.topic, p.payload, p.retain) == ("rap/x", b"kept", True)
        pub.publish("rap/x", b"", qos=1, retain=True)  # clear it
        p = br.recv_publish()
        assert (p.topic, p.payload, p.retain) == ("rap/x", b"", True)
    finally:
        br.close()
        pub.close()


# ---- Debian's mosquitto bridging to the broker under test

def _start_mosquitto(tmp_path, procs, lines, name="mosq"):
    port = free_port()
    conf = tmp_path / ("%s.conf" % name)
    conf.write_text("\n".join(["listener %d 127.0.0.1" % port, "allow_anonymous true"]
                              + list(lines)) + "\n")
    p = procs([MOSQUITTO, "-c", str(conf), "-v"])
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert p.p.poll() is None, "mosquitto exited:\n" + p.out()
            assert time.monotonic() < deadline, "mosquitto not listening:\n" + p.out()
            time.sleep(0.05)
    return port, p


def _until_bridged(pub, sub, topic, what, timeout=20.0):
    """Publishes QoS 0 on `pub` until `sub` (subscribed to topic) gets it: the bridge is up
    and its subscriptions are in place. Bounded in time; the retries are the sync, no
    threshold is measured."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        pub.publish(topic, b"sync%d" % n, qos=0)
        try:
            p = sub.recv_publish(timeout=0.3)
        except Exception:  # nothing yet: the bridge is still connecting
            continue
        # drain later syncs so the next packet is the first real message
        assert p.topic == topic
        last = p.payload
        while last != b"sync%d" % n:
            last = sub.recv_publish().payload
        return
    raise AssertionError("%s never bridged" % what)


@pytest.mark.parametrize("proto", ["mqttv311", "mqttv31", "mqttv50"])
def test_mosquitto_bridge_to_broker(broker, tmp_path, procs, proto):
    """Debian's mosquitto 2.0.11 with a connection block to the broker under test (3.1.1 and
    3.1 with try_private, 5.0 with No Local subscriptions): topics out, in, both and both
    prefixes, message by message, and no echo."""
    lines = ["connection far", "address 127.0.0.1:%d" % broker.port,
             "remote_clientid mosq-bridge", "cleansession true",
             "bridge_protocol_version %s" % proto,
             "topic out/# out 1", "topic in/# in 1", "topic both/# both 1",
             "topic # out 1 loc/ rem/", "topic # in 1 lin/ rin/"]
    lport, mosq = _start_mosquitto(tmp_path, procs, lines)
    lpub, lsub = RawClient(lport), RawClient(lport)  # on mosquitto (local to the bridge)
    rpub, rsub = RawClient(broker.port), RawClient(broker.port)  # on the far end
    try:
        for c, cid in ((lpub, "lpub"), (lsub, "lsub"), (rpub, "rpub"), (rsub, "rsub")):
            c.connect(cid)
        lsub.subscribe([("in/#", 1), ("both/#", 1), ("out/#", 1), ("lin/#", 1), ("rin/#", 1)])
        rsub.subscribe([("out/#", 1), ("both/#", 1), ("in/#", 1), ("rem/#", 1), ("loc/#", 1)])
        _until_bridged(rpub, lsub, "in/sync", "in")
        # rsub gets the in/sync messages locally: drain them with a sentinel of its own
        rpub.publish("out/drain", b"d", qos=1)
        while rsub.recv_publish().topic != "out/drain":
            pass
        lsub_next = lambda: (lambda p: (p.topic, p.payload))(lsub.recv_publish())
        rsub_next = lambda: (lambda p: (p.topic, p.payload))(rsub.recv_publish())

        # out: local -> far end
        lpub.publish("out/1", b"o1", qos=1)
        assert lsub_next() == ("out/1", b"o1")
        assert rsub_next() == ("out/1", b"o1")
        # in: far end -> local
        rpub.publish("in/2", b"i2", qos=1)
        assert rsub_next() == ("in/2", b"i2")
        assert lsub_next() == ("in/2", b"i2")
        # an out topic published at the far end does not come in
        rpub.publish("out/3", b"o3", qos=1)
        assert rsub_next() == ("out/3", b"o3")
        rpub.publish("in/s3", b"s3", qos=1)
        assert rsub_next() == ("in/s3", b"s3")
        assert lsub_next() == ("in/s3", b"s3")
        # an in topic published locally does not go out
        lpub.publish("in/4", b"i4", qos=1)
        assert lsub_next() == ("in/4", b"i4")
        lpub.publish("out/s4", b"s4", qos=1)
        assert lsub_next() == ("out/s4", b"s4")
        assert rsub_next() == ("out/s4", b"s4")
        # both, from each side: once on each side, no echo (the sentinels come next)
        lpub.publish("both/5", b"b5", qos=1)
        assert lsub_next() == ("both/5", b"b5")
        assert rsub_next() == ("both/5", b"b5")
        rpub.publish("in/s5", b"s5", qos=1)
        assert rsub_next() == ("in/s5", b"s5")
        assert lsub_next() == ("in/s5", b"s5")
        rpub.publish("both/6", b"b6", qos=1)
        assert rsub_next() == ("both/6", b"b6")
        assert lsub_next() == ("both/6", b"b6")
        lpub.publish("out/s6", b"s6", qos=1)
        assert lsub_next() == ("out/s6", b"s6")
        assert rsub_next() == ("out/s6", b"s6")
        # prefixes: local loc/7 is remote rem/7; remote rin/8 is local lin/8
        lpub.publish("loc/7", b"p7", qos=1)
        assert rsub_next() == ("rem/7", b"p7")
        rpub.publish("rin/8", b"p8", qos=1)
        assert lsub_next() == ("lin/8", b"p8")
        assert_nothing_before_ping(lpub, rpub, lsub, rsub)
    finally:
        for c in (lpub, lsub, rpub, rsub):
            c.close()
        mosq.kill()
    if os.environ.get("MIDGE_TEST_BROKER", "midge") == "midge":
        # 5.0 has no bridge bit: mosquitto's 5.0 bridge is a client with No Local subscriptions
        assert ("New bridge connected from" in broker.log()) == (proto != "mqttv50")
