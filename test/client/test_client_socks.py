"""A SOCKS5 proxy between libmidge and the broker (paho's proxy_set, libmosquitto's
mosquitto_socks5_set; issue 8, item 20). The proxy is a small RFC 1928 / RFC 1929 server in
this file, on loopback only, that records what the client asked for and relays bytes."""

import socket
import threading

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import anybroker, cbin  # noqa: F401  (fixtures)

PROXY = -21


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise EOFError
        b += chunk
    return b


class Socks5:
    """One connection at a time; creds=(user, password) demands RFC 1929 authentication."""

    def __init__(self, creds=None):
        self.creds = creds
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(20)
        self.port = self.srv.getsockname()[1]
        self.requests = []   # (atyp, host, port) the client asked for
        self.methods = []
        self.auth = []
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        try:
            c, _ = self.srv.accept()
        except OSError:
            return
        c.settimeout(20)
        try:
            ver, n = recv_exact(c, 2)
            assert ver == 5
            methods = list(recv_exact(c, n))
            self.methods.append(methods)
            if self.creds:
                if 2 not in methods:
                    c.sendall(b"\x05\xff")
                    return
                c.sendall(b"\x05\x02")
                _, ul = recv_exact(c, 2)
                user = recv_exact(c, ul).decode()
                pl = recv_exact(c, 1)[0]
                pw = recv_exact(c, pl).decode()
                self.auth.append((user, pw))
                if (user, pw) != self.creds:
                    c.sendall(b"\x01\x01")
                    return
                c.sendall(b"\x01\x00")
            else:
                c.sendall(b"\x05\x00")
            ver, cmd, _, atyp = recv_exact(c, 4)
            assert ver == 5 and cmd == 1
            if atyp == 1:
                host = socket.inet_ntoa(recv_exact(c, 4))
            elif atyp == 3:
                host = recv_exact(c, recv_exact(c, 1)[0]).decode()
            else:
                host = socket.inet_ntop(socket.AF_INET6, recv_exact(c, 16))
            port = int.from_bytes(recv_exact(c, 2), "big")
            self.requests.append((atyp, host, port))
            try:
                up = socket.create_connection((host, port), timeout=5)
            except OSError:
                c.sendall(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")  # connection refused
                return
            c.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + (4242).to_bytes(2, "big"))
            self.relay(c, up)
        except (EOFError, OSError, AssertionError):
            pass
        finally:
            c.close()

    def relay(self, a, b):
        def pump(src, dst):
            try:
                while True:
                    d = src.recv(65536)
                    if not d:
                        break
                    dst.sendall(d)
            except OSError:
                pass
            finally:
                for s in (dst, src):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        t = threading.Thread(target=pump, args=(b, a), daemon=True)
        t.start()
        pump(a, b)
        t.join(10)
        b.close()

    def close(self):
        self.srv.close()
        self.t.join(10)


@pytest.fixture
def socks():
    made = []

    def make(creds=None):
        s = Socks5(creds)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def talk(cbin, broker_port, proxy, extra=(), host="localhost"):
    return run([cbin("mgtest"), "-p", str(broker_port), "-h", host, "-X", str(proxy.port)] +
               list(extra) + ["connect", "sub", "sx/t", "1", "pub", "sx/t", "via-proxy", "1", "0",
                              "recv", "1", "5000", "disconnect"], timeout=60)[0]


def test_through_socks5_proxy(anybroker, cbin, socks):
    p = socks()
    lines = talk(cbin, anybroker.port, p)
    assert "proxy_set rc=0" in lines and "connect rc=0" in lines
    assert any("payload=via-proxy" in ln for ln in lines), lines
    # the broker's name went to the proxy unresolved (rdns), with the broker's port
    assert p.requests == [(3, "localhost", anybroker.port)]
    assert p.methods == [[0]]


def test_address_literal_goes_as_an_address(anybroker, cbin, socks):
    p = socks()
    lines = talk(cbin, anybroker.port, p, host="127.0.0.1")
    assert "connect rc=0" in lines
    assert p.requests == [(1, "127.0.0.1", anybroker.port)]


def test_socks5_user_name_and_password(anybroker, cbin, socks):
    p = socks(("alice", "s3cret"))
    lines = talk(cbin, anybroker.port, p, ["-Y", "alice:s3cret"])
    assert "connect rc=0" in lines and any("payload=via-proxy" in ln for ln in lines)
    assert p.methods == [[0, 2]] and p.auth == [("alice", "s3cret")]
    bad = socks(("alice", "s3cret"))
    lines, _ = run([cbin("mgtest"), "-p", str(anybroker.port), "-X", str(bad.port),
                    "-Y", "alice:wrong", "connect"])
    assert "connect rc=%d" % PROXY in lines
    assert bad.auth == [("alice", "wrong")] and bad.requests == []


def test_proxy_cannot_reach_the_broker(cbin, socks):
    p = socks()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]   # bound, not listening: connecting is refused
    lines, _ = run([cbin("mgtest"), "-p", str(closed), "-X", str(p.port), "connect"])
    s.close()
    assert "connect rc=%d" % PROXY in lines
    assert p.requests == [(1, "127.0.0.1", closed)]
