"""$SYS/broker/... topics as mosquitto(8) names them ("BROKER STATUS"), published every
`sys_interval` seconds, retained, with values that move as clients come and go.

mosquitto publishes a counter only when it changed since the last interval, midge every
interval: the tests wait for a value (bounded) instead of counting publications, except for
uptime, which changes every interval in both.
"""

import re
import time

import pytest

import mqtt_raw as m

INT = r"\d+"
LOAD = r"\d+\.\d\d"
NAME = r"(midge|mosquitto)"

TOPICS = {
    "$SYS/broker/version": NAME + r" version \S+",
    "$SYS/broker/uptime": r"\d+ seconds",
    "$SYS/broker/clients/connected": INT,
    "$SYS/broker/clients/total": INT,
    "$SYS/broker/clients/maximum": INT,
    "$SYS/broker/clients/disconnected": INT,
    "$SYS/broker/messages/received": INT,
    "$SYS/broker/messages/sent": INT,
    "$SYS/broker/publish/messages/received": INT,
    "$SYS/broker/publish/messages/sent": INT,
    "$SYS/broker/publish/messages/dropped": INT,
    "$SYS/broker/bytes/received": INT,
    "$SYS/broker/bytes/sent": INT,
    "$SYS/broker/subscriptions/count": INT,
    "$SYS/broker/retained messages/count": INT,
}
for _what in ("messages/received", "messages/sent", "bytes/received", "bytes/sent",
              "publish/received", "publish/sent", "publish/dropped", "connections", "sockets"):
    for _m in (1, 5, 15):
        TOPICS["$SYS/broker/load/%s/%dmin" % (_what, _m)] = LOAD


class SysReader:
    """A client subscribed to $SYS topics that remembers the latest value of each."""

    def __init__(self, port, filters=("$SYS/broker/#",), client_id="sys-reader"):
        self.c = m.RawClient(port)
        self.c.connect(client_id)
        self.c.subscribe([(f, 0) for f in filters])
        self.values = {}
        self.times = {}  # topic -> [(monotonic time, retain flag)]

    def _one(self, timeout):
        try:
            p = self.c.recv_publish(timeout=timeout)
        except TimeoutError:
            return None
        self.values[p.topic] = p.payload.decode()
        self.times.setdefault(p.topic, []).append((time.monotonic(), p.retain))
        return p

    def drain(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._one(max(0.01, min(0.3, deadline - time.monotonic())))
        return self.values

    def wait(self, topic, pred, timeout=3.5):
        """Reads until topic's latest value satisfies pred; returns it as an int if it is one."""
        deadline = time.monotonic() + timeout
        while True:
            v = self.values.get(topic)
            if v is not None and pred(_num(v)):
                return _num(v)
            if time.monotonic() > deadline:
                raise AssertionError("%s never satisfied the check; last %r; all: %r"
                                     % (topic, v, self.values))
            self._one(max(0.01, min(0.3, deadline - time.monotonic())))

    def close(self):
        self.c.close()


def _num(v):
    try:
        return int(v)
    except ValueError:
        return v


@pytest.fixture
def sysb(broker_factory):
    return broker_factory(extra=["sys_interval 1"])


@pytest.mark.threaded
def test_sys_topics_exist_with_plausible_values(sysb):
    """mosquitto(8) BROKER STATUS: every listed $SYS/broker topic is published, its value
    in mosquitto's format (integers, "N seconds", load averages with two decimals)."""
    r = SysReader(sysb.port)
    vals = r.drain(2.4)
    missing = sorted(t for t in TOPICS if t not in vals)
    assert not missing, "missing $SYS topics: %r" % missing
    bad = {t: vals[t] for t, rx in TOPICS.items() if not re.fullmatch(rx, vals[t])}
    assert not bad, "implausible $SYS values: %r" % bad
    assert int(vals["$SYS/broker/clients/maximum"]) >= int(vals["$SYS/broker/clients/connected"])
    r.close()


@pytest.mark.single_thread
def test_sys_uptime_published_every_interval(sysb):
    """sys_interval 1: uptime is republished every interval and counts up. (mosquitto
    compares whole seconds with '>', so its period is up to two intervals: allow 2.5 s.)"""
    r = SysReader(sysb.port, filters=("$SYS/broker/uptime",))
    deadline = time.monotonic() + 5.5
    while time.monotonic() < deadline:
        r._one(0.3)
        if len([1 for _, retain in r.times.get("$SYS/broker/uptime", []) if not retain]) >= 2:
            break
    live = [t for t, retain in r.times.get("$SYS/broker/uptime", []) if not retain]
    assert len(live) >= 2, r.times
    gaps = [b - a for a, b in zip(live, live[1:])]
    assert all(0.5 <= g <= 2.5 for g in gaps), gaps
    first = int(r.values["$SYS/broker/uptime"].split()[0])
    r.wait("$SYS/broker/uptime", lambda v: isinstance(v, str) and int(v.split()[0]) > first)
    r.close()


@pytest.mark.threaded
def test_sys_clients_connected_total_maximum(sysb):
    """clients/connected goes up by one when a client connects (at the next interval) and
    back down when it leaves; clients/total and clients/maximum follow."""
    r = SysReader(sysb.port)
    r.wait("$SYS/broker/clients/connected", lambda v: v == 1)
    other = m.RawClient(sysb.port)
    other.connect("sys-other")
    r.wait("$SYS/broker/clients/connected", lambda v: v == 2)
    r.wait("$SYS/broker/clients/total", lambda v: v == 2)
    r.wait("$SYS/broker/clients/maximum", lambda v: v >= 2)
    other.disconnect()
    r.wait("$SYS/broker/clients/connected", lambda v: v == 1)
    r.wait("$SYS/broker/clients/maximum", lambda v: v >= 2)
    r.close()


def test_sys_clients_disconnected_counts_offline_persistent_sessions(sysb):
    """clients/disconnected: persistent sessions (clean session 0) whose client is offline;
    clients/total counts them too."""
    r = SysReader(sysb.port)
    r.wait("$SYS/broker/clients/connected", lambda v: v == 1)
    p = m.RawClient(sysb.port)
    p.connect("sys-offline", clean=False)
    p.subscribe([("sys/offline", 1)])
    p.disconnect()
    r.wait("$SYS/broker/clients/disconnected", lambda v: v == 1)
    r.wait("$SYS/broker/clients/connected", lambda v: v == 1)
    r.wait("$SYS/broker/clients/total", lambda v: v == 2)
    r.close()


def test_sys_publish_and_byte_counters(sysb):
    """publish/messages/received counts PUBLISH packets in, messages/received every packet
    in, bytes/received the bytes in; publish/messages/sent and bytes/sent grow with
    deliveries."""
    r = SysReader(sysb.port)
    r.drain(1.5)
    pr = r.wait("$SYS/broker/publish/messages/received", lambda v: True)
    mr = r.wait("$SYS/broker/messages/received", lambda v: True)
    br = r.wait("$SYS/broker/bytes/received", lambda v: True)
    ps = r.wait("$SYS/broker/publish/messages/sent", lambda v: True)
    bs = r.wait("$SYS/broker/bytes/sent", lambda v: True)
    s = m.RawClient(sysb.port)
    s.connect("sys-sub")
    s.subscribe([("sys/count", 0)])
    p = m.RawClient(sysb.port)
    p.connect("sys-pub")
    for _ in range(3):
        p.send(m.publish("sys/count", b"x" * 1000))
    for _ in range(3):
        assert s.recv_publish().payload == b"x" * 1000
    r.wait("$SYS/broker/publish/messages/received", lambda v: v == pr + 3)
    r.wait("$SYS/broker/messages/received", lambda v: v >= mr + 3 + 3)  # + CONNECTs, SUBSCRIBE
    r.wait("$SYS/broker/bytes/received", lambda v: v >= br + 3000)
    r.wait("$SYS/broker/publish/messages/sent", lambda v: v >= ps + 3)
    r.wait("$SYS/broker/bytes/sent", lambda v: v >= bs + 3000)
    s.close()
    p.close()
    r.close()


@pytest.mark.single_thread
def test_sys_load_messages_received_rises(sysb):
    """load/messages/received/1min: a decayed per-minute rate; a burst of packets makes it
    rise above its idle value."""
    r = SysReader(sysb.port)
    r.drain(1.3)
    before = float(r.values.get("$SYS/broker/load/messages/received/1min", "0"))
    p = m.RawClient(sysb.port)
    p.connect("sys-load")
    for i in range(50):
        p.send(m.publish("sys/load", b"l"))
    r.wait("$SYS/broker/load/messages/received/1min",
           lambda v: float(v) > before + 10 if isinstance(v, str) else v > before + 10)
    p.close()
    r.close()


def test_sys_subscriptions_and_retained_counts(sysb):
    """subscriptions/count counts subscriptions; retained messages/count counts retained
    messages (mosquitto includes its own retained $SYS topics: compare deltas)."""
    r = SysReader(sysb.port)
    r.drain(2.2)  # every $SYS topic exists by now: the retained count is steady
    subs = r.wait("$SYS/broker/subscriptions/count", lambda v: True)
    ret = r.wait("$SYS/broker/retained messages/count", lambda v: True)
    c = m.RawClient(sysb.port)
    c.connect("sys-counts")
    c.subscribe([("sys/a", 0), ("sys/b/#", 1)])
    c.publish("sys/r1", b"1", qos=1, retain=True, pid=5)
    c.publish("sys/r2", b"2", qos=1, retain=True, pid=6)
    r.wait("$SYS/broker/subscriptions/count", lambda v: v == subs + 2)
    r.wait("$SYS/broker/retained messages/count", lambda v: v == ret + 2)
    c.publish("sys/r1", b"", qos=1, retain=True, pid=7)  # deletes it
    r.wait("$SYS/broker/retained messages/count", lambda v: v == ret + 1)
    c.close()
    r.wait("$SYS/broker/subscriptions/count", lambda v: v == subs)
    r.close()


@pytest.mark.single_thread
def test_sys_topics_retained_for_late_subscriber(sysb):
    """The $SYS topics are retained: a client subscribing later gets version and uptime at
    once, with the RETAIN flag [MQTT-3.3.1-8], without waiting for the next interval.
    No clock: an interval's publication reaches an existing subscription with RETAIN 0
    [MQTT-3.3.1-9], so RETAIN 1 on both says they came from the retained store."""
    early = SysReader(sysb.port, filters=("$SYS/broker/uptime",), client_id="sys-early")
    early.wait("$SYS/broker/uptime", lambda v: True)  # published at least once by now
    early.close()
    c = m.RawClient(sysb.port)
    c.connect("sys-late")
    c.subscribe([("$SYS/broker/version", 0), ("$SYS/broker/uptime", 0)])
    got = {}
    while len(got) < 2:
        p = c.recv_publish()
        assert p.retain, p
        got[p.topic] = p
    assert sorted(got) == ["$SYS/broker/uptime", "$SYS/broker/version"], got
    c.close()
