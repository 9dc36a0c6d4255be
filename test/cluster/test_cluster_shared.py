"""Shared subscriptions across cluster nodes (docs/cluster.md "Shared subscriptions").

One module-scoped cluster: three nats-server processes routed to each other and three midge
nodes A, B, C, each on its own NATS server. `$share/g/f` members on different nodes form one
group: each message published anywhere reaches exactly one member of each group (g, f) in
the cluster, as on a single broker; plain subscribers still get every message.

Sync points: a group's members are in force when every member got a probe (group_ready).
Every member client also holds a plain subscription to a fence topic; the fence, published
after the messages, travels the plain path of the member's node in order behind them, so a
copy that the plain path (or the origin's local routing) delivered to a member by mistake
arrives before it. What NATS itself delivered to a node's shared-group connection
("<node>/shared") is read from nats-server's monitoring endpoint.
"""

import time

import pytest

from harness import IS_MIDGE
from mqtt_raw import UNSUBACK, unsubscribe

from cluster.nats_cluster import cluster_fixture, clients_fixture, delivered_since

pytestmark = [pytest.mark.skipif(not IS_MIDGE, reason="midge's own clustering"),
              pytest.mark.threaded]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from cluster_fixture(tmp_path_factory, "cluster_shared")


@pytest.fixture
def clients():
    yield from clients_fixture()


def group_ready(pub, members, topic, qos, every=True, timeout=20.0):
    """Probes on topic from pub until every client in members received one (NATS picks one
    member per probe: a member never reached keeps the loop going), or any one of them
    (every False: the group is in force on NATS, its JetStream consumer made). Probes that
    arrive later are skipped by take()."""
    waiting = set(range(len(members)))
    if not every:
        waiting = {0}
        members = [_Any(members)]
    deadline = time.monotonic() + timeout
    pid = 1000
    while waiting:
        assert time.monotonic() < deadline, "a member of the group never got a probe"
        pid += 1
        pub.publish(topic, b"probe", qos=qos, pid=pid)
        for i, m in enumerate(members):
            try:
                while True:
                    p = m.recv_publish(timeout=0.05 if i not in waiting else 0.2)
                    assert p.payload == b"probe", p
                    waiting.discard(i)
            except TimeoutError:
                pass


class _Any:
    """Several members read as one: a publish from any of them."""
    def __init__(self, members):
        self.members = members

    def recv_publish(self, timeout):
        for m in self.members:
            try:
                return m.recv_publish(timeout=timeout / len(self.members))
            except TimeoutError:
                pass
        raise TimeoutError


def take(member, fence):
    """What member got up to the fence (a plain subscription of its own), probes skipped."""
    got = []
    while True:
        p = member.recv_publish(timeout=10)
        if p.topic == fence and p.payload == b"fence":
            return got
        if p.payload != b"probe":
            got.append(p.payload)


def fence_ready(pub, members, fence):
    """Every member's plain subscription to fence is in force: probes on fence until each
    got one, then an end marker that each reads up to (one publisher's plain messages
    arrive in order)."""
    waiting = set(range(len(members)))
    deadline = time.monotonic() + 20
    while waiting:
        assert time.monotonic() < deadline, "a fence subscription never reached the publisher"
        pub.publish(fence, b"probe")
        for i in list(waiting):
            try:
                p = members[i].recv_publish(timeout=0.2)
            except TimeoutError:
                continue
            assert (p.topic, p.payload) == (fence, b"probe"), p
            waiting.discard(i)
    pub.publish(fence, b"end")
    for m in members:
        while True:
            p = m.recv_publish()
            assert p.topic == fence, p
            if p.payload == b"end":
                break


def settle(nats, pub, members, fence, got):
    """QoS 1: a copy that a node's JetStream consumer routed to a member by mistake after
    the fence still arrives before a second one. Once MQTT_MSGS is empty, every node
    acknowledged, so routed, everything it got (a node acknowledges after routing); a fence
    published then is routed after those copies by the same worker (one per origin
    publisher) and reaches each member behind them."""
    deadline = time.monotonic() + 20
    while _stream_msgs(nats.servers[0]) != 0:
        assert time.monotonic() < deadline, "MQTT_MSGS kept messages every consumer acknowledged"
        time.sleep(0.1)
    pub.publish(fence, b"fence", qos=1, pid=101)
    for i, m in enumerate(members):
        got[i] += take(m, fence)


def _stream_msgs(server):
    """Messages in the stream MQTT_MSGS, as the NATS server reports it."""
    d = server.get("/jsz?streams=1")
    for a in d.get("account_details") or []:
        for st in a.get("stream_detail") or []:
            if st.get("name") == "MQTT_MSGS":
                return st["state"]["messages"]
    return None


@pytest.mark.parametrize("qos", [0, 1])
def test_shared_subscription_across_nodes(cluster, clients, qos):
    """Group g1 has members on B (two) and C, group g2 (same filter) on A and C, a plain
    subscriber sits on B. 30 messages from A (no g1 member there): each reaches exactly one
    g1 member and one g2 member; at QoS 0 the plain subscriber gets all 30 in order."""
    nats, n = cluster
    t = "sh%d/t" % qos
    fence = "sh%d/fence" % qos
    pub = clients(n["A"], "sh%d-pub" % qos)
    g1 = [clients(n["B"], "sh%d-g1b1" % qos), clients(n["B"], "sh%d-g1b2" % qos),
          clients(n["C"], "sh%d-g1c" % qos)]
    g2 = [clients(n["A"], "sh%d-g2a" % qos), clients(n["C"], "sh%d-g2c" % qos)]
    plain = clients(n["B"], "sh%d-plain" % qos)
    for m in g1:
        m.subscribe([("$share/g1/" + t, 1), (fence, 1)])
    for m in g2:
        m.subscribe([("$share/g2/" + t, 1), (fence, 1)])
    plain.subscribe([(t, 1), (fence, 1)])
    everyone = g1 + g2 + [plain]
    fence_ready(pub, everyone, fence)
    # every g1 member is reachable from A (NATS picks among the other servers' queue members)
    group_ready(pub, g1, t, qos)
    group_ready(pub, g2, t, qos, every=False)  # A's member may get them all (same server)
    before_a = nats.servers[0].mqtt_msgs("A/shared")
    n_msgs = 30
    for i in range(n_msgs):
        pub.publish(t, b"m%d" % i, qos=qos, pid=i + 1)
    pub.publish(fence, b"fence", qos=qos, pid=100)
    want = sorted(b"m%d" % i for i in range(n_msgs))
    got1 = [take(m, fence) for m in g1]
    got2 = [take(m, fence) for m in g2]
    # the fence may overtake the last messages of a group: collect the rest, then check once
    for grp, got in ((g1, got1), (g2, got2)):
        deadline = time.monotonic() + 10
        while sum(map(len, got)) < n_msgs and time.monotonic() < deadline:
            for i, m in enumerate(grp):
                try:
                    p = m.recv_publish(timeout=0.1)
                    if p.payload != b"probe" and p.topic != fence:
                        got[i].append(p.payload)
                except TimeoutError:
                    pass
        if qos:
            settle(nats, pub, grp, fence, got)
        assert sorted(sum(got, [])) == want  # each message once in the group
    if qos == 0:
        # the plain subscriber beside the groups gets every message, in order
        assert take(plain, fence) == [b"m%d" % i for i in range(n_msgs)]
    # At QoS 1 the plain subscriber is left out: its copy travels through B's JetStream
    # consumer, not through anything shared, and in about one run in fifteen under ASan
    # nats-server 2.9.10 never delivered one message to it although A's PUBACK said stored
    # and the stream emptied (B's log: never routed), the same loss seen with a consumer
    # per group (docs/cluster.md "Shared subscriptions"); test_cluster.py covers that path.
    # NATS picks among the queue members of the servers other than A's (none on A's): both
    # B's and C's get some
    assert len(got1[0] + got1[1]) > 0 and len(got1[2]) > 0, got1
    # A's own member of g2 got what it got through NATS, on A's shared connection
    assert delivered_since(before_a, nats.servers[0].mqtt_msgs("A/shared")) >= len(got2[0])


@pytest.mark.parametrize("qos", [0, 1])
def test_publisher_beside_a_member_each_message_once(cluster, clients, qos):
    """The publisher's node B has a member of the group, so does C: every message once in
    the group (B's member gets its share through NATS, not also from B's local routing)."""
    nats, n = cluster
    t, fence = "shb%d/t" % qos, "shb%d/fence" % qos
    pub = clients(n["B"], "shb%d-pub" % qos)
    members = [clients(n["B"], "shb%d-b" % qos), clients(n["C"], "shb%d-c" % qos)]
    for m in members:
        m.subscribe([("$share/g/" + t, 1), (fence, 1)])
    fence_ready(pub, members, fence)
    group_ready(pub, members, t, qos, every=False)
    before = nats.servers[1].mqtt_msgs("B/shared")
    for i in range(20):
        pub.publish(t, b"m%d" % i, qos=qos, pid=i + 1)
    pub.publish(fence, b"fence", qos=qos, pid=100)
    got = [take(m, fence) for m in members]
    deadline = time.monotonic() + 10
    while sum(map(len, got)) < 20 and time.monotonic() < deadline:
        for i, m in enumerate(members):
            try:
                p = m.recv_publish(timeout=0.1)
                if p.payload != b"probe" and p.topic != fence:
                    got[i].append(p.payload)
            except TimeoutError:
                pass
    if qos:
        settle(nats, pub, members, fence, got)
    assert sorted(sum(got, [])) == sorted(b"m%d" % i for i in range(20))
    assert delivered_since(before, nats.servers[1].mqtt_msgs("B/shared")) >= len(got[0])


def _routed_interest(server, subject):
    """How many of server's routes (the other NATS servers) hold interest in subject."""
    return sum(1 for r in server.get("/routez?subs=detail").get("routes") or []
               if any(d.get("subject") == subject
                      for d in r.get("subscriptions_list_detail") or []))


def test_last_member_on_a_node_leaves(cluster, clients):
    """Members on B and C; C's leaves: C's node drops its queue subscription, NATS stops
    sending the group's messages there, and B's member gets every one."""
    nats, n = cluster
    t, fence = "shu/t", "shu/fence"
    pub = clients(n["A"], "shu-pub")
    mb = clients(n["B"], "shu-b")
    mc = clients(n["C"], "shu-c")
    for m in (mb, mc):
        m.subscribe([("$share/g/" + t, 0), (fence, 0)])
    fence_ready(pub, [mb, mc], fence)
    group_ready(pub, [mb, mc], t, 0)
    mc.send(unsubscribe(5, ["$share/g/" + t], version=5))
    assert mc.expect(UNSUBACK).pid == 5
    # sync point: A's NATS server no longer has C's queue subscription (one left: B's)
    deadline = time.monotonic() + 20
    while _routed_interest(nats.servers[0], "mqtt.shu.t") != 1:
        assert time.monotonic() < deadline, "C's queue subscription never left A's server"
        time.sleep(0.05)
    before = nats.servers[2].mqtt_msgs("C/shared")
    for i in range(20):
        pub.publish(t, b"m%d" % i)
    pub.publish(fence, b"fence")
    got = take(mb, fence)
    deadline = time.monotonic() + 10
    while len(got) < 20 and time.monotonic() < deadline:
        try:
            got.append(mb.recv_publish(timeout=0.1).payload)
        except TimeoutError:
            pass
    assert got == [b"m%d" % i for i in range(20)]
    assert take(mc, fence) == []
    assert delivered_since(before, nats.servers[2].mqtt_msgs("C/shared")) == 0
