#!/usr/bin/python3
"""Writes the seeds of fuzz_broker_clients into test/fuzz/corpus/fuzz_broker_clients/.

Each seed is a config byte and operations (see the top of fuzz_broker_clients.c); the
packets come from test/mqtt_raw.py, the hand-written builder the broker tests use, not from
midge's own encoder. Run it again after changing a seed: /usr/bin/python3 test/fuzz/gen_broker_clients.py
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import mqtt_raw as m  # noqa: E402

OUT = os.path.join(HERE, "corpus", "fuzz_broker_clients")

# config byte bits (configure() in the fuzzer)
THREADS2, SMALL_QUEUE, INFLIGHT1, SIZE_LIMIT, NO_RETAIN, NO_EMPTY_ID, MAX_PACKET, ALIASES = (
    1, 2, 4, 8, 16, 32, 64, 128)


class Seed:
    def __init__(self, cfg=0):
        self.b = bytearray([cfg])

    def send(self, c, data):
        for k in range(0, len(data), 65535):
            part = data[k:k + 65535]
            if len(part) <= 255:
                self.b += bytes([c, len(part)]) + part
            else:
                self.b += bytes([1 << 3 | c, len(part) >> 8, len(part) & 255]) + part
        return self

    def repeat(self, c, unit, count):
        self.b += bytes([2 << 3 | c, len(unit)]) + unit + count.to_bytes(3, "big")
        return self

    def close(self, c):
        self.b.append(3 << 3 | c)
        return self

    def ack(self, c):
        self.b.append(4 << 3 | c)
        return self

    def stall(self, c):
        self.b.append(5 << 3 | c)
        return self


def many_filters_header(ptype, flags, n, unit_len, pid=1):
    """The fixed header and packet id of a SUBSCRIBE / UNSUBSCRIBE with n filters of
    unit_len bytes each, to be followed by repeat(unit, n)."""
    return bytes([ptype << 4 | flags]) + m.varint(2 + n * unit_len) + m.u16(pid)


def seeds():
    out = {}

    s = Seed()
    s.ack(0).send(0, m.connect("sub")).send(0, m.subscribe(1, [("a/#", 2), ("a/+/c", 1)]))
    s.send(1, m.connect("pub"))
    s.send(1, m.publish("a/b", b"q0") + m.publish("a/b/c", b"q1", qos=1, pid=1))
    s.send(1, m.publish("a/b", b"q2", qos=2, pid=2) + m.pubrel(2))
    s.send(1, m.disconnect()).send(0, m.unsubscribe(2, ["a/#"]) + m.pingreq())
    out["v311_pub_sub"] = s

    v = 5
    s = Seed(ALIASES)
    s.ack(0).send(0, m.connect("sub5", version=v, clean=False, properties=[
        (m.P_SESSION_EXPIRY, 60), (m.P_TOPIC_ALIAS_MAXIMUM, 4), (m.P_RECEIVE_MAXIMUM, 2)]))
    s.send(0, m.subscribe(1, [("x/#", 2 | 4 | 8), ("y", 1 | 0x10)], version=v,
                          properties=[(m.P_SUBSCRIPTION_ID, 7)]))
    s.send(1, m.connect("pub5", version=v, properties=[(m.P_TOPIC_ALIAS_MAXIMUM, 2)]))
    s.send(1, m.publish("x/1", b"p", qos=1, pid=1, version=v, properties=[
        (m.P_TOPIC_ALIAS, 1), (m.P_USER_PROPERTY, ("k", "v")), (m.P_MESSAGE_EXPIRY, 30),
        (m.P_RESPONSE_TOPIC, "r"), (m.P_CORRELATION_DATA, b"c"), (m.P_CONTENT_TYPE, "t"),
        (m.P_PAYLOAD_FORMAT, 1)]))
    s.send(1, m.publish("", b"alias", qos=2, pid=2, version=v, properties=[(m.P_TOPIC_ALIAS, 1)]))
    s.send(1, m.pubrel(2, version=v) + m.publish("y", b"r", retain=True, version=v))
    s.send(0, m.disconnect(version=v, reason=0x04)).send(0, m.connect("sub5", version=v, clean=False))
    s.send(1, m.disconnect(version=v, reason=0))
    out["v5_props_aliases_session"] = s

    s = Seed()
    s.send(0, m.connect("r")).send(0, m.publish("ret/a", b"1", qos=1, pid=1, retain=True))
    s.send(0, m.publish("ret/b", b"2", retain=True) + m.publish("ret/c", b"", retain=True))
    s.ack(1).send(1, m.connect("rs")).send(1, m.subscribe(1, [("ret/#", 1), ("+/a", 2)]))
    s.send(0, m.publish("ret/a", b"", retain=True)).send(1, m.subscribe(2, [("ret/#", 0)]))
    out["retained"] = s

    s = Seed(THREADS2)
    s.send(0, m.connect("same", clean=False)).send(0, m.subscribe(1, [("t/#", 1)]))
    s.send(2, m.connect("p")).send(2, m.publish("t/1", b"a", qos=1, pid=5))
    s.send(1, m.connect("same", clean=False))  # takeover, from the other worker
    s.ack(1).send(2, m.publish("t/2", b"b", qos=1, pid=6))
    s.close(1).send(3, m.connect("same", clean=True))
    out["takeover_two_workers"] = s

    s = Seed(THREADS2)
    s.ack(1).send(1, m.connect("w")).send(1, m.subscribe(1, [("will/#", 2)]))
    s.send(0, m.connect("dies", will={"topic": "will/x", "payload": b"bye", "qos": 2,
                                      "retain": True}))
    s.close(0)
    s.send(2, m.connect("dies5", version=5, will={"topic": "will/y", "payload": b"b", "qos": 1,
                                                   "properties": [(m.P_WILL_DELAY, 0)]},
                        properties=[(m.P_SESSION_EXPIRY, 0)]))
    s.send(2, b"\xe0\x02\x04\x00")  # DISCONNECT with will message
    out["wills"] = s

    # The issue-8 remote crash: more than 65,535 filters in one SUBSCRIBE / UNSUBSCRIBE.
    n = 70000
    s = Seed()
    s.send(0, m.connect("many"))
    s.send(0, many_filters_header(8, 2, n, 4)).repeat(0, b"\x00\x01a\x00", n)
    s.send(0, m.pingreq())
    out["subscribe_70000_filters"] = s
    s = Seed()
    s.send(0, m.connect("many"))
    s.send(0, many_filters_header(10, 2, n, 3)).repeat(0, b"\x00\x01a", n)
    out["unsubscribe_70000_filters"] = s
    s = Seed(5)
    s.send(0, m.connect("many5", version=5))
    s.send(0, b"\x82" + m.varint(3 + n * 4) + m.u16(9) + b"\x00")  # empty properties
    s.repeat(0, b"\x00\x01b\x01", n)
    out["subscribe_v5_many_filters"] = s

    s = Seed(SMALL_QUEUE | INFLIGHT1)
    s.send(0, m.connect("slow", clean=False)).send(0, m.subscribe(1, [("f/#", 1)])).stall(0)
    s.send(1, m.connect("fast"))
    s.repeat(1, m.publish("f/x", b"0123456789", qos=1, pid=3), 200)
    s.repeat(1, m.publish("f/y", b"z" * 100), 200)
    s.stall(0).ack(0).send(0, m.pingreq())
    out["slow_subscriber"] = s

    s = Seed(SIZE_LIMIT | MAX_PACKET | NO_RETAIN | NO_EMPTY_ID)
    s.send(0, m.connect(""))
    s.send(1, m.connect("lim", version=5, properties=[(m.P_MAXIMUM_PACKET_SIZE, 64)]))
    s.send(1, m.subscribe(1, [("#", 1)], version=5))
    s.send(2, m.connect("lp")).send(2, m.publish("big", b"x" * 200, qos=1, pid=1))
    s.send(2, m.publish("r", b"x", retain=True)).send(2, m.publish("t" * 280, b"", qos=0))
    out["limits"] = s

    s = Seed()
    s.send(0, m.connect("bad")).send(0, b"\x00\x00")  # reserved type
    s.send(1, m.connect("bad2")).send(1, b"\x82\x03\x00\x01\x00")  # filter cut short
    s.send(2, m.connect("bad3")).send(2, b"\x30\xff\xff\xff\xff\x7f")  # length too long
    s.send(3, b"\x10\x0c\x00\x04MQTT\x06\x02\x00\x3c\x00\x00")  # protocol level 6
    s.send(4, m.connect("x", version=3)).send(4, m.connect("x"))  # second CONNECT
    s.send(5, m.connect("q2")).send(5, m.publish("a", b"", qos=3, pid=1))
    out["malformed"] = s

    s = Seed(INFLIGHT1)
    s.send(0, m.connect("acks", version=5)).send(0, m.subscribe(1, [("k", 2), ("j", 1)], version=5))
    s.send(1, m.connect("src")).send(1, m.publish("k", b"2", qos=2, pid=1) + m.pubrel(1))
    s.send(1, m.publish("j", b"1", qos=1, pid=2))
    # wrong acknowledgements for what is in flight (issue 8, item 2)
    s.send(0, m.puback(1, version=5) + m.pubcomp(2, version=5) + m.pubrec(2, version=5))
    s.send(0, m.pubrec(1, version=5) + m.pubrec(1, version=5) + m.pubcomp(1, version=5))
    s.send(1, m.publish("k", b"dup", qos=2, pid=1, dup=True) + m.pubrel(9))
    out["wrong_acks"] = s

    s = Seed(THREADS2)
    s.ack(0).send(0, m.connect("g1", version=5)).send(0, m.subscribe(1, [("$share/g/s/#", 1)], version=5))
    s.ack(1).send(1, m.connect("g2")).send(1, m.subscribe(1, [("$share/g/s/#", 2), ("$SYS/#", 0)]))
    s.send(2, m.connect("sp")).send(2, m.publish("s/1", b"a", qos=1, pid=1))
    s.send(2, m.publish("s/2", b"b", qos=2, pid=2) + m.pubrel(2) + m.publish("$SYS/x", b"c"))
    s.close(0).send(2, m.publish("s/3", b"c", qos=1, pid=3))
    out["shared_and_sys"] = s

    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, s in seeds().items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes(s.b))
    print("%d seeds in %s" % (len(seeds()), OUT))


if __name__ == "__main__":
    main()
