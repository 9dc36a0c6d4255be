"""Three Debian nats-server processes clustered on loopback (JetStream on, a store directory
each under the test's tmp_path), and midge nodes on them.

NatsCluster(tmp_path, n) starts n servers with client, route and monitoring ports claimed
through test/ports.py, routes between all of them, and waits until every server sees the
others and JetStream has elected its meta leader. node(...) is a midge broker
(harness.Broker) with cluster_nats_url pointing at one server. The monitoring endpoint (/connz?subs=1) shows what each midge node subscribed to on
NATS and how many messages NATS delivered to it: the tests read NATS's own view, not midge's.
"""

import json
import shutil
import time
import urllib.request

from harness import Broker
from ports import free_port
import procs

NATS_SERVER = shutil.which("nats-server") or "/usr/bin/nats-server"


class NatsServer:
    def __init__(self, tmp_path, idx, port, route_port, http_port, route_ports, name,
                 max_file_store="256MB"):
        self.port, self.route_port, self.http_port = port, route_port, http_port
        self.conf = str(tmp_path / ("nats%d.conf" % idx))
        self.log_path = str(tmp_path / ("nats%d.log" % idx))
        routes = ", ".join("nats-route://127.0.0.1:%d" % p for p in route_ports if p != route_port)
        with open(self.conf, "w") as f:
            f.write("server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n"
                    "cluster { name: %s, listen: 127.0.0.1:%d, routes: [%s] }\n"
                    "jetstream { store_dir: \"%s\", max_memory_store: 64MB, "
                    "max_file_store: %s }\n"
                    % ("n%d" % idx, port, http_port, name, route_port, routes,
                       str(tmp_path / ("js%d" % idx)), max_file_store))
        self._log = open(self.log_path, "wb")
        self.proc = procs.start([NATS_SERVER, "-c", self.conf], self._log)

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.http_port, path),
                                    timeout=5) as r:
            return json.loads(r.read().decode())

    def connection(self, name):
        """The /connz entry of the client connection called name (a midge node), or None."""
        for c in self.get("/connz?subs=1").get("connections") or []:
            if c.get("name") == name:
                return c
        return None

    def mqtt_msgs(self, name):
        """Messages NATS delivered to connection name on each of its subscriptions to MQTT
        traffic (subjects mqtt.* and mqtt$.*), by subscription id. A node's out_msgs counts
        its control traffic too (every node's heartbeat each second)."""
        for c in self.get("/connz?subs=detail").get("connections") or []:
            if c.get("name") == name:
                return {d["sid"]: d.get("msgs", 0)
                        for d in c.get("subscriptions_list_detail") or []
                        if d["subject"].startswith("mqtt")}
        return {}

    def stop(self):
        procs.stop(self.proc)
        self._log.close()


class NatsCluster:
    def __init__(self, tmp_path, n=3, name="midgetest", max_file_store="256MB"):
        ports = [(free_port(), free_port(), free_port()) for _ in range(n)]
        route_ports = [p[1] for p in ports]
        self.servers = []
        try:
            for i, (cp, rp, hp) in enumerate(ports):
                self.servers.append(NatsServer(tmp_path, i, cp, rp, hp, route_ports, name,
                                               max_file_store))
            self._wait_routes(n - 1)
        except BaseException:
            self.stop()
            raise

    def _wait_routes(self, want, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if all(s.get("/routez").get("num_routes", 0) >= want for s in self.servers) \
                        and all((s.get("/jsz").get("meta_cluster") or {}).get("leader")
                                for s in self.servers):
                    return
            except OSError:
                pass
            for s in self.servers:
                assert s.proc.poll() is None, "nats-server exited:\n" + open(s.log_path).read()
            assert time.monotonic() < deadline, "NATS servers never routed to each other"
            time.sleep(0.1)

    def stop(self):
        for s in self.servers:
            s.stop()


def delivered_since(before, after):
    """Messages delivered between two mqtt_msgs snapshots."""
    return sum(v - before.get(sid, 0) for sid, v in after.items())


def node(tmp_path, server, name, threads=2, extra=()):
    return Broker(tmp_path, threads=threads, name=name,
                  extra=["cluster_nats_url %s" % server.url, "cluster_node_name %s" % name]
                  + list(extra))


def cluster_fixture(tmp_path_factory, prefix, extra=()):
    """The body of a module's `cluster` fixture: three NATS servers routed to each other and
    three midge nodes A, B, C (threads 2), each on its own server; yields (nats, {name:
    node}) and stops them all at the end (stop_all)."""
    tmp = tmp_path_factory.mktemp(prefix)
    nats = NatsCluster(tmp, 3)
    nodes = {}
    try:
        for i, name in enumerate(("A", "B", "C")):
            nodes[name] = node(tmp, nats.servers[i], name, extra=extra)
        yield nats, nodes
    finally:
        stop_all(nodes.values(), nats)


def stop_all(nodes, nats):
    """Stops every midge node (each checks its own exit: leaks, status), then the NATS
    servers, and fails with every node's complaint at once."""
    errors = []
    for b in nodes:
        try:
            b.stop()
        except AssertionError as e:
            errors.append(str(e))
    nats.stop()
    assert not errors, "\n".join(errors)


def clients_fixture():
    """The body of a `clients` fixture: make(broker, cid, version=5, **connect_kw) gives a
    connected RawClient; all are closed at the end of the test."""
    from mqtt_raw import RawClient
    made = []

    def make(broker, cid, version=5, **kw):
        c = RawClient(broker.port, version=version)
        c.connect(cid, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
