"""Keywords that were accepted but whose effect no test looked at (issue 14, item 8):
set_tcp_nodelay, user (privilege drop), per-listener and broker-wide max_connections,
max_inflight_bytes. Each test looks at the effect itself: the socket option on the broker's
own accepted socket, the broker's credentials in /proc, which clients are served."""

import ctypes
import os
import re
import socket
import time

import pytest

import mqtt_raw as m
from harness import IS_MIDGE, Broker, assert_nothing_before_ping, free_port, \
    run_broker_until_exit

NAME = "midge" if IS_MIDGE else "mosquitto"


# ---------------------------------------------------------------- set_tcp_nodelay

SYS_PIDFD_OPEN = 434
SYS_PIDFD_GETFD = 438


def _broker_socket_of(pid, client):
    """The broker's end of `client`'s TCP connection, duplicated into this process with
    pidfd_getfd(2) (we are the broker's parent: allowed under Yama's ptrace_scope 1)."""
    local_port = client.sock.getsockname()[1]
    # /proc/net/tcp: the broker side's remote port is the client's local port
    inode = None
    deadline = time.monotonic() + 5
    while inode is None:
        for path in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
            with open(path) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if int(cols[2].split(":")[1], 16) == local_port and cols[3] == "01":
                        inode = cols[9]
        assert inode is not None or time.monotonic() < deadline, \
            "no broker socket connected to port %d" % local_port
        if inode is None:
            time.sleep(0.05)
    fd_dir = "/proc/%d/fd" % pid
    target = None
    for name in os.listdir(fd_dir):
        try:
            if os.readlink(os.path.join(fd_dir, name)) == "socket:[%s]" % inode:
                target = int(name)
        except OSError:
            pass
    assert target is not None, "socket inode %s not among the broker's fds" % inode
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    assert pidfd >= 0, "pidfd_open: %s" % os.strerror(ctypes.get_errno())
    try:
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, target, 0)
        assert fd >= 0, "pidfd_getfd: %s" % os.strerror(ctypes.get_errno())
    finally:
        os.close(pidfd)
    return socket.socket(fileno=fd)


@pytest.mark.parametrize("setting,want", [(None, 0), ("false", 0), ("true", 1)])
def test_set_tcp_nodelay_on_accepted_socket(broker_factory, setting, want):
    """set_tcp_nodelay true: the broker's accepted socket has TCP_NODELAY set (Nagle off);
    unset or false: it has not (the kernel's default). Read from the broker's own socket."""
    b = broker_factory(extra=["set_tcp_nodelay %s" % setting] if setting else [])
    c = m.RawClient(b.port)
    try:
        c.connect("nodelay-%s" % setting)
        sk = _broker_socket_of(b.pid, c)
        try:
            got = sk.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            sk.close()
        assert bool(got) == bool(want), "TCP_NODELAY %d on the broker's socket" % got
    finally:
        c.close()


# ---------------------------------------------------------------- user

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")


def _ids(pid):
    """{task id: (uids, gids)} of every thread of pid, from /proc."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                text = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        uids = re.search(r"^Uid:\s+(.*)$", text, re.M).group(1).split()
        gids = re.search(r"^Gid:\s+(.*)$", text, re.M).group(1).split()
        out[tid] = (uids, gids)
    return out


@needs_root
def test_user_drops_privileges_in_every_thread(tmp_path, threads):
    """user nobody, started as root: once serving, every thread of the broker runs as
    nobody (real, effective, saved and filesystem ids), and it still serves on the port it
    bound as root."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    b = Broker(tmp_path, threads=threads, extra=["user nobody"])
    try:
        c = m.RawClient(b.port)
        c.connect("as-nobody")
        c.subscribe([("u/t", 1)])
        p = m.RawClient(b.port)
        p.connect("as-nobody-p")
        p.publish("u/t", b"x", qos=1, pid=2)
        p.disconnect()
        assert c.recv_publish().payload == b"x"
        ids = _ids(b.pid)
        assert ids
        want = ([str(nobody.pw_uid)] * 4, [str(nobody.pw_gid)] * 4)
        bad = {t: v for t, v in ids.items() if v != want}
        assert not bad, "threads not running as nobody: %r" % bad
        c.disconnect()
    finally:
        b.stop()


@needs_root
def test_user_unknown_refused_before_serving(tmp_path):
    """user <no such user>: the broker says so and exits with an error before it runs any
    client: it never reports itself running. (It used to start its workers first and drop
    privileges afterwards, so clients could be served as root meanwhile.)"""
    port = free_port()
    rc, out = run_broker_until_exit(
        tmp_path, "listener %d 127.0.0.1\nallow_anonymous true\nuser no-such-user-h5\n" % port)
    assert rc not in (0, None), out
    assert re.search(r"no-such-user-h5", out), out
    assert not re.search(r"%s version \S+ running" % NAME, out), out


# ---------------------------------------------------------------- max_connections

def _served(port, cid):
    """A client on port that got CONNACK 0, or None when the broker refused the connection
    (closed it without a CONNACK 0)."""
    c = m.RawClient(port)
    try:
        c.send(m.connect(cid))
        p = c.recv()
    except (m.Closed, OSError):
        c.close()
        return None
    if p.type == m.CONNACK and p.reason == 0:
        return c
    c.close()
    return None


def _served_soon(port, cid, timeout=5.0):
    """_served, retried while the broker may still be counting a connection that just went
    (the readiness probe, a client that left): a positive check, so polling is fine."""
    deadline = time.monotonic() + timeout
    while True:
        c = _served(port, cid)
        if c or time.monotonic() > deadline:
            return c
        time.sleep(0.05)


def _refused(port, cid):
    c = m.RawClient(port)
    try:
        c.send(m.connect(cid))
    except OSError:
        pass
    got = c.expect_closed()
    c.close()
    return not any(p.type == m.CONNACK and p.reason == 0 for p in got)


def test_max_connections_per_listener(tmp_path, threads):
    """max_connections after a listener line limits that listener only: with 1 on the first
    listener, a second client there is refused while the other listener takes two."""
    p1, p2 = free_port(), free_port()
    # the harness probes readiness on its port: make it the unlimited listener
    b = Broker(tmp_path, threads=threads, listener=False, port=p2,
               extra=["listener %d 127.0.0.1" % p1, "max_connections 1",
                      "listener %d 127.0.0.1" % p2])
    held = []
    try:
        a = _served_soon(p1, "pl-a")
        assert a, "first client on the limited listener refused"
        held.append(a)
        assert _refused(p1, "pl-b"), "second client on a max_connections 1 listener served"
        for cid in ("pl-c", "pl-d"):
            c = _served_soon(p2, cid)
            assert c, "%s refused on the unlimited listener" % cid
            held.append(c)
        a.disconnect()
        held.remove(a)
        e = _served_soon(p1, "pl-e")
        assert e, "the limited listener did not take a client after one left"
        held.append(e)
    finally:
        for c in held:
            c.close()
        b.stop()


@pytest.mark.midge_only  # mosquitto's max_connections is a listener setting only
def test_max_connections_broker_wide(tmp_path, threads):
    """max_connections before any listener limits the broker as a whole: 2 over two
    listeners, a third client is refused on either."""
    p1, p2 = free_port(), free_port()
    b = Broker(tmp_path, threads=threads, listener=False, port=p1,
               extra=["max_connections 2", "listener %d 127.0.0.1" % p1,
                      "listener %d 127.0.0.1" % p2])
    held = []
    try:
        for port, cid in ((p1, "bw-a"), (p2, "bw-b")):
            c = _served_soon(port, cid)
            assert c, "%s refused below the limit" % cid
            held.append(c)
        assert _refused(p1, "bw-c"), "third client served on the first listener"
        assert _refused(p2, "bw-d"), "third client served on the second listener"
    finally:
        for c in held:
            c.close()
        b.stop()


# ---------------------------------------------------------------- max_inflight_bytes

@pytest.mark.mosquitto_xfail("sends another message while the bytes in flight are below the "
                             "limit, so the last one goes over it (6 + 6 > 10)")
@pytest.mark.parametrize("version", [4, 5])
def test_max_inflight_bytes(broker_factory, version):
    """max_inflight_bytes 10 with 6-byte payloads: one QoS 1 message in flight at a time
    (a second would make 12 bytes), although max_inflight_messages allows 20. Each PUBACK
    lets the next one out, in order."""
    b = broker_factory(extra=["max_inflight_bytes 10"])
    s = m.RawClient(b.port, version=version)
    s.connect("ib-s")
    s.subscribe([("ib/t", 1)])
    p = m.RawClient(b.port, version=version)
    p.connect("ib-p")
    for i in range(3):
        p.publish("ib/t", b"msg-%02d" % i, qos=1, pid=i + 1)
    got = []
    for i in range(3):
        g = s.recv_publish(ack=False)
        got.append(g.payload)
        # the broker has taken all three (PUBACKs above): only the byte budget holds the
        # next one back until this PUBACK
        assert_nothing_before_ping(p, s)
        s.send(m.puback(g.pid, version=version))
    assert got == [b"msg-00", b"msg-01", b"msg-02"]
    assert_nothing_before_ping(s)
    s.close()
    p.close()


def test_max_inflight_bytes_0_is_unlimited(broker_factory):
    """max_inflight_bytes 0 (the default): only max_inflight_messages (here 3) counts."""
    b = broker_factory(extra=["max_inflight_bytes 0", "max_inflight_messages 3"])
    s = m.RawClient(b.port)
    s.connect("ib0-s")
    s.subscribe([("ib0/t", 1)])
    p = m.RawClient(b.port)
    p.connect("ib0-p")
    for i in range(4):
        p.publish("ib0/t", b"x" * 1000, qos=1, pid=i + 1)
    first = [s.recv_publish(ack=False) for _ in range(3)]
    assert_nothing_before_ping(p, s)
    s.send(m.puback(first[0].pid))
    s.recv_publish()
    for f in first[1:]:
        s.send(m.puback(f.pid))
    assert_nothing_before_ping(s)
    s.close()
    p.close()
