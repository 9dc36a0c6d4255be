"""A bridge's host name is looked up off the worker's event loop (broker/resolve.h).

getaddrinfo blocks for as long as DNS takes; done on the loop it would stall every client of
that worker. The tests point midge's lookup helper at a DNS server of their own
(MIDGE_TEST_RESOLVER=127.0.0.1:PORT, a real UDP socket on loopback; RES_OPTIONS gives glibc
30 s per query, so it never answers itself first) and hold its answer back: the sync point is
the query arriving at that socket, after which a client on the same worker (threads 1) must
still get its PINGRESP. Then the name fails (NXDOMAIN: logged, retried after restart_timeout)
and then resolves (the bridge connects and a message crosses)."""

import re
import socket
import struct
import time

import pytest

from mqtt_raw import RawClient
from lib.harness import IS_MIDGE, Broker
from test_bridge_run import wait_bridged

pytestmark = pytest.mark.skipif(not IS_MIDGE, reason="midge's own bridges")

NAME = "far.midge-test."  # absolute (trailing dot): no search domains, one query per type
QTYPE_A, QTYPE_AAAA = 1, 28


class FakeDNS:
    """A DNS server on 127.0.0.1 that answers only when the test says so."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def query(self, timeout=20.0):
        """The next query: (raw, addr, qname, qtype)."""
        self.sock.settimeout(timeout)
        raw, addr = self.sock.recvfrom(4096)
        i, labels = 12, []
        while raw[i]:
            labels.append(raw[i + 1:i + 1 + raw[i]].decode())
            i += 1 + raw[i]
        qtype = struct.unpack("!H", raw[i + 1:i + 3])[0]
        return raw[:i + 5], addr, ".".join(labels) + ".", qtype

    def answer(self, q, rcode=0, a=None):
        """Answer q: rcode (3 = NXDOMAIN), and an A record for a when q asks for one."""
        raw, addr, qname, qtype = q
        ans = b""
        if a and qtype == QTYPE_A:
            ans = struct.pack("!HHHIH", 0xC00C, QTYPE_A, 1, 0, 4) + socket.inet_aton(a)
        head = struct.pack("!HHHHHH", struct.unpack("!H", raw[:2])[0], 0x8180 | rcode, 1,
                           1 if ans else 0, 0, 0)
        self.sock.sendto(head + raw[12:] + ans, addr)

    def serve_until(self, broker, regex, rcode=0, a=None, timeout=20.0):
        """Answer every query so (stale ones of an earlier lookup included: glibc may give up
        on the second type after the first's NXDOMAIN) until the broker's log matches."""
        deadline = time.monotonic() + timeout
        while not re.search(regex, broker.log(), re.M):
            assert time.monotonic() < deadline, "log never matched %r:\n%s" % (regex, broker.log())
            try:
                q = self.query(timeout=0.2)
            except socket.timeout:
                continue
            assert q[2] == NAME, q
            self.answer(q, rcode, a)

    def close(self):
        self.sock.close()


@pytest.mark.threaded
def test_lookup_does_not_stall_the_worker(tmp_path):
    """While the bridge's name is unanswered, a client of the same worker gets its PINGRESPs;
    NXDOMAIN is logged in mosquitto's words and retried after restart_timeout; once the
    name resolves the bridge connects and carries messages."""
    dns = FakeDNS()
    far = Broker(tmp_path, threads=1, name="far")
    near = Broker(tmp_path, threads=1, name="near", extra=[
        "connection named", "address %s:%d" % (NAME, far.port), "remote_clientid near-named",
        "restart_timeout 1", "topic n/# out 1"],
        env={"MIDGE_TEST_RESOLVER": "127.0.0.1:%d" % dns.port,
             "RES_OPTIONS": "timeout:30 attempts:1"})
    by, pub, sub = RawClient(near.port), RawClient(near.port), RawClient(far.port)
    try:
        by.connect("bystander")
        q = dns.query()                  # the lookup is running, and waits for us
        assert q[2] == NAME, q
        for _ in range(3):
            by.send(b"\xc0\x00")         # PINGREQ
            assert by.recv().raw == b"\xd0\x00"
        near.wait_log(r"Connecting bridge named \(far\.midge-test\.:%d\)" % far.port)
        assert "Error creating bridge" not in near.log()  # still pending
        dns.answer(q, rcode=3)
        dns.serve_until(near, r"Error creating bridge: Name or service not known\.", rcode=3)
        # restart_timeout later it asks again, and now the name resolves
        dns.serve_until(near, r"Received CONNACK on connection local\.near-named\.", a="127.0.0.1")
        pub.connect("n-pub")
        sub.connect("n-sub")
        sub.subscribe([("n/#", 1)])
        wait_bridged(pub, sub, "n/sync", "named")
        assert near.log().count("Connecting bridge named") >= 2  # retried
    finally:
        for c in (by, pub, sub):
            c.close()
        near.stop()
        far.stop()
        dns.close()


def test_localhost_by_name(tmp_path):
    """address localhost:PORT goes through the lookup helper and the system's resolver
    (/etc/hosts) and works."""
    far = Broker(tmp_path, threads=1, name="far")
    near = Broker(tmp_path, threads=1, name="near", extra=[
        "connection lh", "address localhost:%d" % far.port, "remote_clientid near-lh",
        "restart_timeout 1", "topic l/# out 1"])
    pub, sub = RawClient(near.port), RawClient(far.port)
    try:
        pub.connect("l-pub")
        sub.connect("l-sub")
        sub.subscribe([("l/#", 1)])
        wait_bridged(pub, sub, "l/sync", "localhost")
    finally:
        pub.close()
        sub.close()
        near.stop()
        far.stop()


def test_bind_address(tmp_path):
    """bridge_bind_address 127.0.0.2: the bridge's socket leaves from that address (all of
    127/8 is loopback on Linux), as the remote's log shows."""
    far = Broker(tmp_path, threads=1, name="far")
    near = Broker(tmp_path, threads=1, name="near", extra=[
        "connection bound", "address 127.0.0.1:%d" % far.port, "remote_clientid near-bound",
        "bridge_bind_address 127.0.0.2", "restart_timeout 1", "topic b/# out 1"])
    try:
        far.wait_log(r"New bridge connected from 127\.0\.0\.2:\d+ as near-bound ", timeout=20)
    finally:
        near.stop()
        far.stop()
