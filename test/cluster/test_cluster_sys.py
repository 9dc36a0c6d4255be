"""Cluster totals in $SYS (docs/cluster.md "Operations and numbers"): every node shares its
numbers on NATS each sys_interval and publishes $SYS/broker/cluster/nodes, nodes/list and
total/... over the live nodes; a node that leaves (bye, or no heartbeat) drops out.

A cluster of its own (three nats-server processes, midge nodes A, B, C with sys_interval 1),
because the test stops nodes. Every wait reads the totals themselves until they say what is
expected (they are published every second), bounded in time; the node stops are first seen
in the other nodes' "left" log lines.
"""

import time
import urllib.request

import pytest

from harness import IS_MIDGE
from ports import free_port
from mqtt_raw import RawClient

from cluster.nats_cluster import stop_all, NatsCluster, node

pytestmark = [pytest.mark.skipif(not IS_MIDGE, reason="midge's own clustering"),
              pytest.mark.threaded]

TOTALS = ("nodes", "nodes/list", "total/clients/connected", "total/clients/total",
          "total/messages/received", "total/messages/sent",
          "total/publish/messages/received", "total/publish/messages/sent",
          "total/subscriptions/count", "total/retained messages/count")


def totals(mon, want, timeout=30.0):
    """Reads $SYS/broker/cluster/nodes... and total/... on mon (subscribed) until one whole
    round of them satisfies want(values); returns that round."""
    values = {}
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, "the totals never showed it: %r" % values
        p = mon.recv_publish(timeout=10)
        key = p.topic.split("/cluster/", 1)[1]
        if key not in TOTALS:
            continue
        values[key] = p.payload.decode()
        # the last topic of a round: the round is complete
        if key == TOTALS[-1] and all(k in values for k in TOTALS) and want(values):
            return values


def num(v, k):
    return int(v[k])


def test_totals_sum_the_live_nodes_and_drop_a_node_that_leaves(tmp_path):
    nats = NatsCluster(tmp_path, 3)
    n, made = {}, []
    try:
        mport = free_port()  # A's /metrics
        for i, name in enumerate("ABC"):
            extra = ["sys_interval 1"]
            if name == "A":
                extra += ["listener %d 127.0.0.1" % mport, "protocol websockets", "http_metrics true"]
            n[name] = node(tmp_path, nats.servers[i], name, extra=extra)
        for x in "ABC":
            for y in "ABC":
                if x != y:
                    n[x].wait_log(r"Cluster node %s (joined|is in the cluster)\." % y, timeout=20)

        def client(x, cid, filt):
            c = RawClient(n[x].port, version=5)
            c.connect(cid)
            c.subscribe([(filt, 0)])
            made.append(c)
            return c

        mons = {x: client(x, "mon-" + x, "$SYS/broker/cluster/#") for x in "ABC"}
        per_node = {"A": 2, "B": 3, "C": 1}  # clients besides the monitor
        pubs = {}
        for x, k in per_node.items():
            for i in range(k):
                pubs[x, i] = client(x, "c-%s%d" % (x, i), "tot/%s/%d" % (x, i))
        connected = sum(per_node.values()) + 3
        for i in range(5):
            pubs["A", 0].publish("tot/none", b"a", qos=1, pid=i + 1)
        for i in range(7):
            pubs["C", 0].publish("tot/none", b"c", qos=1, pid=i + 1)

        def all3(v):
            return (num(v, "nodes") == 3 and v["nodes/list"] == "A,B,C"
                    and num(v, "total/clients/connected") == connected
                    and num(v, "total/clients/total") == connected
                    and num(v, "total/subscriptions/count") == connected
                    and num(v, "total/publish/messages/received") == 12)
        for x in "ABC":
            v = totals(mons[x], all3)
            # every node counts at least its own CONNECT, SUBSCRIBE, PINGs and $SYS sent
            assert num(v, "total/messages/received") >= 2 * connected + 12
            assert num(v, "total/messages/sent") >= 2 * connected
        # /metrics on A: the same totals (nothing changes now, so they are exact)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10) as r:
            met = dict(line.rsplit(" ", 1) for line in r.read().decode().splitlines()
                       if line.startswith("midge_cluster_"))
        assert met == {"midge_cluster_nodes": "3", "midge_cluster_clients_connected": str(connected),
                       "midge_cluster_sessions": str(connected),
                       "midge_cluster_subscriptions": str(connected)}

        # C stops (says bye): A and B log it and count it out
        n["C"].stop()
        for x in "AB":
            n[x].wait_log(r"Cluster node C left\.", timeout=20)
        left = connected - per_node["C"] - 1

        def two(v):
            return (num(v, "nodes") == 2 and v["nodes/list"] == "A,B"
                    and num(v, "total/clients/connected") == left
                    and num(v, "total/subscriptions/count") == left
                    and num(v, "total/publish/messages/received") == 5)
        for x in "AB":
            totals(mons[x], two)

        # B is killed (no bye): A counts it out once its heartbeat is missed
        n["B"].proc.kill()
        n["B"].proc.wait(timeout=10)
        n["A"].wait_log(r"Cluster node B left \(no heartbeat for 4 s\)\.", timeout=20)
        totals(mons["A"], lambda v: num(v, "nodes") == 1 and v["nodes/list"] == "A"
               and num(v, "total/clients/connected") == per_node["A"] + 1)
    finally:
        for c in made:
            c.close()
        if "B" in n:
            n["B"].stop(check=not n["B"].proc.returncode)
        stop_all([b for x, b in n.items() if x != "B"], nats)
