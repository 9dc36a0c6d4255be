"""Sessions across cluster nodes (docs/cluster.md "Sessions"): the client-id registry in the
JetStream bucket MQTT_SESSIONS, takeover of a client id from one node by another, clean
start, the heartbeat, and a SIGKILLed node's persistent session recovered on another node.

One module-scoped cluster: three nats-server processes routed to each other, three midge
nodes A, B, C (threads 2), each on its own NATS server. Clients are hand-built (mqtt_raw).
Each test uses client ids and topics of its own. Messages are published on the node that
holds the subscriber when the test counts them, so no wait for NATS interest is needed;
every negative check ends on a sync point (a later message, a SUBACK, a close).
"""

import re
import threading
import time

import pytest

from harness import IS_MIDGE, Broker
from mqtt_raw import (DISCONNECT, P_RECEIVE_MAXIMUM, P_SESSION_EXPIRY, P_SUBSCRIPTION_ID,
                      RawClient, publish)

from cluster.nats_cluster import cluster_fixture, clients_fixture, node, stop_all, NatsCluster
from cluster.test_cluster import interest_ready

pytestmark = [pytest.mark.skipif(not IS_MIDGE, reason="midge's own clustering"),
              pytest.mark.threaded]

NODES = ("A", "B", "C")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from cluster_fixture(tmp_path_factory, "csess")


@pytest.fixture
def clients():
    yield from clients_fixture()


def test_takeover_at_5_0_moves_subscriptions_and_queued_messages(cluster, clients):
    """A 5.0 client on A with one message in flight (receive maximum 1, not acknowledged)
    and two queued; the same client id connects to B: A sends the old connection DISCONNECT
    0x8E (Session taken over) and closes it; B resumes the session (session present) with
    both subscriptions and their options, and sends the three messages in order."""
    _, n = cluster
    expiry = [(P_SESSION_EXPIRY, 300)]
    old = clients(n["A"], "tk5", clean=False, properties=expiry + [(P_RECEIVE_MAXIMUM, 1)])
    old.subscribe([("tk5/t", 1)], properties=[(P_SUBSCRIPTION_ID, 7)])
    old.subscribe([("tk5/x/+", 0x06)], pid=2)  # QoS 2, No Local
    pub = clients(n["A"], "tk5-pub")
    for i in range(3):
        pub.publish("tk5/t", b"m%d" % i, qos=1, pid=i + 1)  # PUBACK: queued on A
    first = old.recv_publish(ack=False)
    assert (first.topic, first.payload, first.qos) == ("tk5/t", b"m0", 1)

    new = RawClient(n["B"].port, version=5)
    try:
        ack = new.connect("tk5", clean=False, properties=expiry)
        assert ack.session_present == 1
        got = old.expect_closed()
        assert [(p.type, p.reason) for p in got] == [(DISCONNECT, 0x8E)]
        assert bytes(got[0].raw) == b"\xe0\x01\x8e"
        msgs = new.collect(3)
        assert [(p.topic, p.payload, p.qos) for p in msgs] == [("tk5/t", b"m%d" % i, 1)
                                                               for i in range(3)]
        assert all(p.props.all(P_SUBSCRIPTION_ID) == [7] for p in msgs)
        # B queued for the session while A handed it over: a message routed on both sides
        # of the move may come again (at least once), never a new one before the sync point
        other = clients(n["B"], "tk5-other")
        other.publish("tk5/t", b"sync", qos=1, pid=1)
        while True:
            p = new.recv_publish()
            if p.payload == b"sync":
                break
            assert (p.topic, p.qos) == ("tk5/t", 1) and p.payload in (b"m0", b"m1", b"m2"), p
        # the subscriptions are B's now, options kept: No Local skips the client's own
        # message, the next one (from another client of B) comes at QoS 2
        new.publish("tk5/x/own", b"mine", qos=1, pid=9)
        other.publish("tk5/x/b", b"theirs", qos=2, pid=3)
        p = new.recv_publish()
        assert (p.topic, p.payload, p.qos) == ("tk5/x/b", b"theirs", 2)
        other.publish("tk5/t", b"after", qos=1, pid=4)
        p = new.recv_publish()
        assert (p.topic, p.payload, p.props.all(P_SUBSCRIPTION_ID)) == ("tk5/t", b"after", [7])
    finally:
        new.close()
    n["A"].wait_log(r"Client tk5 already connected, taken over by cluster node B: closing old "
                    r"connection\.")
    n["A"].wait_log(r"Client tk5: session moved to cluster node B \(2 subscriptions, 3 queued "
                    r"messages\)\.")
    n["B"].wait_log(r"Client tk5: session taken over from cluster node A \(2 subscriptions, 3 "
                    r"queued messages\)\.")


def test_takeover_at_3_1_1_closes_the_old_connection(cluster, clients):
    """3.1.1 has no DISCONNECT from the server: the old connection on B is closed with
    nothing sent; the new one on C gets the session and the two unacknowledged messages."""
    _, n = cluster
    old = clients(n["B"], "tk3", version=4, clean=False)
    old.subscribe([("tk3/t", 1)])
    pub = clients(n["B"], "tk3-pub", version=4)
    pub.publish("tk3/t", b"one", qos=1, pid=1)
    pub.publish("tk3/t", b"two", qos=1, pid=2)
    assert [p.payload for p in old.collect(2, ack=False)] == [b"one", b"two"]
    new = clients(n["C"], "tk3", version=4, clean=False)
    old.expect_closed(allow_disconnect=False)
    got = new.collect(2)
    assert [(p.topic, p.payload, p.qos) for p in got] == [("tk3/t", b"one", 1), ("tk3/t", b"two", 1)]
    clients(n["C"], "tk3-pub2", version=4).publish("tk3/t", b"three", qos=1, pid=1)
    assert new.recv_publish().payload == b"three"
    n["C"].wait_log(r"Client tk3: session taken over from cluster node B \(1 subscriptions, 2 "
                    r"queued messages\)\.")


def test_clean_start_on_another_node_discards_the_session(cluster, clients):
    """Clean start: the old connection goes (0x8E), the session is not resumed (session
    present 0) and its subscription does not follow: a message on its topic does not
    arrive before a later one on a topic the new connection subscribed to."""
    _, n = cluster
    old = clients(n["C"], "tkc", clean=False, properties=[(P_SESSION_EXPIRY, 300)])
    old.subscribe([("tkc/t", 1)])
    new = RawClient(n["A"].port, version=5)
    try:
        assert new.connect("tkc", clean=True).session_present == 0
        got = old.expect_closed()
        assert [(p.type, p.reason) for p in got] == [(DISCONNECT, 0x8E)]
        new.subscribe([("tkc/sync", 1)])
        pub = clients(n["A"], "tkc-pub")
        pub.publish("tkc/t", b"not for you", qos=1, pid=1)
        pub.publish("tkc/sync", b"sync", qos=1, pid=2)
        p = new.recv_publish()
        assert (p.topic, p.payload) == ("tkc/sync", b"sync")
    finally:
        new.close()
    n["C"].wait_log(r"Client tkc: session ended, clean start to cluster node A \(0 subscriptions, "
                    r"0 queued messages\)\.")
    # C holds nothing of it any more: resuming on C finds no session
    back = RawClient(n["C"].port, version=5)
    try:
        assert back.connect("tkc", clean=False,
                            properties=[(P_SESSION_EXPIRY, 300)]).session_present == 0
    finally:
        back.close()


def sq_messages(server):
    """How many messages the stream MQTT_SESSQ holds, as the NATS server says."""
    for acct in server.get("/jsz?streams=true").get("account_details") or []:
        for st in acct.get("stream_detail") or []:
            if st.get("name") == "MQTT_SESSQ":
                return st["state"]["messages"]
    return 0


def test_a_killed_node_is_seen_gone_and_its_sessions_recover_elsewhere(cluster, clients,
                                                                       tmp_path):
    """Node K is killed with SIGKILL (no bye) while its persistent 3.1.1 client is away
    with one QoS 1 message it never acknowledged and two queued after it left: every other
    node logs K gone once its heartbeat stops; the client reconnects to A and finds its
    session (session present), the three messages in order, then both subscriptions at
    work."""
    nats, n = cluster
    k = node(tmp_path, nats.servers[2], "K")
    try:
        for x in NODES:
            n[x].wait_log(r"Cluster node K joined\.", timeout=20)
        before = sq_messages(nats.servers[0])
        c = RawClient(k.port, version=4)
        c.connect("rc", clean=False)
        c.subscribe([("rc/t", 1), ("rc/u/#", 0)])
        pub = RawClient(k.port, version=4)
        pub.connect("rc-pub-k")
        pub.publish("rc/t", b"in flight", qos=1, pid=3)
        assert c.recv_publish(ack=False).payload == b"in flight"
        c.disconnect()
        k.wait_log(r"Client rc disconnected\.")
        pub.publish("rc/t", b"queued 1", qos=1, pid=1)  # PUBACK: queued on K
        pub.publish("rc/t", b"queued 2", qos=1, pid=2)
        pub.close()
        # the session is in the registry with both filters, its queue in JetStream
        k.wait_log(r"Cluster node K: client rc saved in the registry \(2 subscriptions",
                   timeout=20)
        deadline = time.monotonic() + 20
        while sq_messages(nats.servers[0]) < before + 3:
            assert time.monotonic() < deadline, "the queued messages never reached JetStream"
            time.sleep(0.05)
        k.proc.kill()
        k.proc.wait(timeout=10)
        for x in NODES:
            n[x].wait_log(r"Cluster node K left \(no heartbeat for 4 s\)\.", timeout=20)
        back = RawClient(n["A"].port, version=4)
        try:
            assert back.connect("rc", clean=False).session_present == 1
            got = back.collect(3)
            assert [(p.topic, p.payload, p.qos) for p in got] == [("rc/t", b"in flight", 1),
                                                                  ("rc/t", b"queued 1", 1),
                                                                  ("rc/t", b"queued 2", 1)]
            pub = clients(n["A"], "rc-pub", version=4)
            pub.publish("rc/u/1", b"zero", qos=0)
            pub.publish("rc/t", b"one", qos=1, pid=1)
            got = back.collect(2)
            assert [(p.topic, p.payload, p.qos) for p in got] == [("rc/u/1", b"zero", 0),
                                                                  ("rc/t", b"one", 1)]
        finally:
            back.close()
        n["A"].wait_log(r"Client rc: session recovered from the registry, owned by cluster node "
                        r"K \(2 subscriptions, 3 queued messages\)\.")
        # delivered from A now: the stream no longer holds them
        deadline = time.monotonic() + 20
        while sq_messages(nats.servers[0]) > before:
            assert time.monotonic() < deadline, "the recovered messages stay in JetStream"
            time.sleep(0.05)
    finally:
        k.stop(check=False)


def test_a_node_restarted_with_its_store_drops_what_another_node_took_meanwhile(cluster,
                                                                                 clients,
                                                                                 tmp_path):
    """Node P (persistence true) is stopped while its persistent client is away; the client
    reconnects to A, which recovers the session from the registry. P restarts, restores the
    session from its store, learns from the registry that A owns it now and drops it; the
    client then moves back to P by a takeover from A, subscription intact."""
    nats, n = cluster
    conf = ["persistence true", "persistence_location %s/" % tmp_path]
    p = node(tmp_path, nats.servers[1], "P", extra=conf)
    port = p.port
    try:
        c = RawClient(p.port, version=4)
        c.connect("pr", clean=False)
        c.subscribe([("pr/t", 1)])
        c.disconnect()
        p.wait_log(r"Cluster node P: client pr saved in the registry \(1 subscriptions",
                   timeout=20)
        p.stop()
        a = RawClient(n["A"].port, version=4)
        try:
            assert a.connect("pr", clean=False).session_present == 1
        finally:
            a.disconnect()
        n["A"].wait_log(r"Client pr: session recovered from the registry, owned by cluster "
                        r"node P \(1 subscriptions, 0 queued messages\)\.")
        n["A"].wait_log(r"Cluster node A: client pr saved in the registry \(1 subscriptions",
                        timeout=20)
        p = Broker(tmp_path, threads=2, name="P", port=port, extra=[
            "cluster_nats_url %s" % nats.servers[1].url, "cluster_node_name P"] + conf)
        p.wait_log(r"Client pr is owned by cluster node A now \(taken over while this node was "
                   r"away or cut off\): dropping its session here\.", timeout=20)
        back = clients(p, "pr", version=4, clean=False)
        pub = clients(p, "pr-pub", version=4)
        pub.publish("pr/t", b"home again", qos=1, pid=1)
        got = back.recv_publish()
        assert (got.topic, got.payload) == ("pr/t", b"home again")
        p.wait_log(r"Client pr: session taken over from cluster node A \(1 subscriptions, 0 "
                   r"queued messages\)\.")
    finally:
        p.stop()


class Flood:
    """A QoS 0 stream on one topic from a raw client, as fast as the node reads it, from a
    thread; bounded in time (60 s) and stopped by stop()."""

    def __init__(self, port, cid, topic):
        self.c = RawClient(port, version=5)
        self.c.connect(cid)
        self.blob = publish(topic, b"f" * 16, qos=0, version=5) * 2000
        self.done = threading.Event()
        self.sent = 0
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        deadline = time.monotonic() + 60
        try:
            while not self.done.is_set() and time.monotonic() < deadline:
                self.c.send(self.blob)
                self.sent += 2000
        except OSError:
            pass

    def stop(self):
        self.done.set()
        self.th.join(timeout=20)
        self.c.close()


def test_takeover_while_the_old_node_is_flooded_from_other_nodes(cluster, clients):
    """Node A gets more messages from other nodes than its workers route (C floods a topic
    that 25 subscribers on A want and never read): its NATS delivery path waits for the
    workers (backpressure) and libnats queues the rest. A takeover of a client of A from B
    meanwhile still reaches A at once: A answers, closes the old connection (0x8E) and the
    session moves with its queued message (not a recovery from the registry after A failed
    to answer in time, which loses the message)."""
    _, n = cluster
    expiry = [(P_SESSION_EXPIRY, 300)]
    old = clients(n["A"], "tkf", clean=False, properties=expiry)
    old.subscribe([("tkf/t", 1)])
    clients(n["A"], "tkf-pub").publish("tkf/t", b"queued", qos=1, pid=1)
    assert old.recv_publish(ack=False).payload == b"queued"
    subs = []
    for i in range(25):
        s = RawClient(n["A"].port, version=5, rcvbuf=4096)
        subs.append(s)
        s.connect("tkf-sink%d" % i)
        s.subscribe([("tkf/flood/#", 0)])
    probe = clients(n["A"], "tkf-probe")
    probe.subscribe([("tkf/flood/x", 0)])
    interest_ready(clients(n["C"], "tkf-probe-pub"), [probe], "tkf/flood/x")
    flood = Flood(n["C"].port, "tkf-flood", "tkf/flood/x")
    try:
        # the flood has filled A's pipeline: libnats says its queue overflowed
        n["A"].wait_log(r"(?i)slow consumer", timeout=40)
        # the old owner's worker may have many messages to route before the request
        new = RawClient(n["B"].port, version=5, timeout=40)
        try:
            assert new.connect("tkf", clean=False, properties=expiry).session_present == 1
            got = old.expect_closed(timeout=20)
            assert [(p.type, p.reason) for p in got] == [(DISCONNECT, 0x8E)]
            p = new.recv_publish(timeout=40)
            assert (p.topic, p.payload) == ("tkf/t", b"queued")
        finally:
            new.close()
    finally:
        flood.stop()
        for s in subs:
            s.close()
    n["B"].wait_log(r"Client tkf: session (taken over from|recovered from the registry, owned by) "
                    r"cluster node A")
    assert re.search(r"Client tkf: session taken over from cluster node A \(1 subscriptions, 1 "
                     r"queued messages\)\.", n["B"].log())



def test_qos1_stream_from_a_third_node_survives_a_takeover(cluster, clients):
    """A numbered QoS 1 stream from a publisher on C to a persistent 5.0 client that moves
    from A to B in the middle of it: every message arrives at least once (on the old
    connection, acknowledged there, or on the new one), none lost while the session moves
    (after A packed it, before B has its subscriptions)."""
    _, n = cluster
    expiry = [(P_SESSION_EXPIRY, 300)]
    old = clients(n["A"], "tkw", clean=False, properties=expiry)
    old.subscribe([("tkw/t", 1)])
    pub = clients(n["C"], "tkw-pub")
    sent = []
    go_on = threading.Event()
    go_on.set()
    errors = []

    def publisher():
        try:
            deadline = time.monotonic() + 60
            while go_on.is_set() and time.monotonic() < deadline:
                i = len(sent)
                pub.publish("tkw/t", b"%d" % i, qos=1, pid=i % 60000 + 1)
                sent.append(i)
        except Exception as e:  # reported by the main thread
            errors.append(e)

    got = set()
    # the stream reaches A (JetStream: no NATS interest to wait for)
    th = threading.Thread(target=publisher, daemon=True)
    th.start()
    try:
        while len(got) < 20:
            got.add(int(old.recv_publish(timeout=20).payload))
        new = RawClient(n["B"].port, version=5)
        try:
            assert new.connect("tkw", clean=False, properties=expiry).session_present == 1
            mark = len(sent)
            # the stream goes on for a while after the move, then ends
            while len(sent) < mark + 30 and th.is_alive():
                got.add(int(new.recv_publish(timeout=20).payload))
            go_on.clear()
            th.join(timeout=30)
            assert not errors, errors
            last = sent[-1]
            while last not in got:
                got.add(int(new.recv_publish(timeout=20).payload))
        finally:
            new.close()
    finally:
        go_on.clear()
        th.join(timeout=30)
    missing = sorted(set(sent) - got)
    assert not missing, "lost %d of %d: %r" % (len(missing), len(sent), missing[:20])
    n["B"].wait_log(r"Client tkw: session taken over from cluster node A")


def test_a_full_jetstream_is_a_clear_error_not_a_wait(tmp_path):
    """JetStream full (NATS servers with a small max_file_store, filled with retained
    messages; nats-server then stops answering for JetStream): a CONNECT whose registry
    write fails still gets its CONNACK after the bounded tries, served by this node alone,
    and the log says why."""
    nats = NatsCluster(tmp_path, 3, max_file_store="2MB")
    f = None
    made = []
    try:
        f = node(tmp_path, nats.servers[0], "F")
        f.wait_log(r"Cluster node F: client ids in bucket MQTT_SESSIONS\.", timeout=20)
        pub = RawClient(f.port, version=5)
        made.append(pub)
        pub.connect("full-pub")
        deadline = time.monotonic() + 30
        i = 0
        while True:  # 100 kB retained messages into MQTT_RETAIN until JetStream says full
            pub.publish("full/%d" % i, b"x" * 100000, qos=0, retain=True)
            i += 1
            used = nats.servers[0].get("/jsz").get("storage", 0)
            if used >= 2 * 1024 * 1024 and i % 5 == 0:
                break
            assert time.monotonic() < deadline, "JetStream never filled (%d bytes)" % used
        c = RawClient(f.port, version=5, timeout=30)
        made.append(c)
        assert c.connect("full-c", clean=False,
                         properties=[(P_SESSION_EXPIRY, 300)]).session_present == 0
        f.wait_log(r"Warning: cluster node F: the client-id registry MQTT_SESSIONS did not "
                   r"answer or refused the write for client full-c \(.*\): it is served by this "
                   r"node alone")
        c.subscribe([("full/me", 1)])
        pub.publish("full/me", b"still here", qos=0)
        assert c.recv_publish().payload == b"still here"
    finally:
        for x in made:
            x.close()
        stop_all([f] if f else [], nats)
