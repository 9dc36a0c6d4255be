"""A NATS server that stops reading (SIGSTOP: alive, connected, silent) must not freeze the
workers of the midge node connected to it. libnats writes its full output buffer on the
publishing thread; without a write deadline that write waited until libnats's ping timer gave
up on the server, minutes later, and every client of that worker waited with it. With the
deadline (broker/cluster.c set_options) the write fails, libnats reconnects in the background
and buffers, and the worker goes on: a bystander client on the same worker gets its PINGRESP
while the server is still stopped.

Three NATS servers of its own (JetStream needs a cluster) and two nodes on the first: B subscribes, so A has a reason to send the
publisher's messages to NATS (a node sends only what another node wants)."""

import os
import signal
import socket

import pytest

from harness import IS_MIDGE
from mqtt_raw import PINGRESP, RawClient, pingreq, publish

from cluster.nats_cluster import stop_all, NatsCluster, node
from cluster.test_cluster import interest_ready

pytestmark = [pytest.mark.skipif(not IS_MIDGE, reason="midge's own clustering")]


def test_a_silent_nats_server_does_not_freeze_the_workers(tmp_path):
    nats = NatsCluster(tmp_path, 3)
    nodes, clients, stopped = [], [], False
    try:
        a = node(tmp_path, nats.servers[0], "A", threads=1)
        nodes.append(a)
        b = node(tmp_path, nats.servers[0], "B", threads=1)
        nodes.append(b)
        sub = RawClient(b.port, version=5)
        clients.append(sub)
        sub.connect("stall-sub")
        sub.subscribe([("stall/#", 0)])
        pub = RawClient(a.port, version=5)
        clients.append(pub)
        pub.connect("stall-pub")
        interest_ready(pub, [sub], "stall/t")
        bystander = RawClient(a.port, version=5)
        clients.append(bystander)
        bystander.connect("stall-bystander")

        os.kill(nats.servers[0].proc.pid, signal.SIGSTOP)
        stopped = True
        # 12 MB for NATS, far more than libnats's 1 MiB buffer and the sockets' buffers
        pkt = publish("stall/t", b"x" * 60000, qos=0, version=5)
        pub.sock.settimeout(0.5)
        sent = 0
        try:
            for _ in range(200):
                pub.sock.sendall(pkt)
                sent += 1
        except socket.timeout:
            pass  # the worker stopped reading: it is writing to NATS (or stuck there)
        # the sync point: the bystander's PINGRESP, on the same worker (threads 1), while NATS
        # is still stopped. Bounded well below libnats's ping timeout (2 x 2 min).
        bystander.send(pingreq())
        assert bystander.expect(PINGRESP, timeout=60), "the worker froze behind NATS"
        assert nats.servers[0].proc.poll() is None
    finally:
        if stopped:
            os.kill(nats.servers[0].proc.pid, signal.SIGCONT)
        for c in clients:
            c.close()
        stop_all(nodes, nats)
