"""libmidge over WebSockets (MIDGE_TRANSPORT_WEBSOCKETS, midge_ws_set_options: paho's
transport="websockets" and ws_set_options), against midge's and Debian's mosquitto's
WebSockets listeners, and against a scripted HTTP server that records the upgrade request."""

import base64
import hashlib
import socket
import threading

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import free_port, wait_port
from client_helpers import anybroker_factory, cbin  # noqa: F401  (fixtures)

PROTOCOL = -6
INVAL = -1


@pytest.fixture
def wsbroker(anybroker_factory):
    """(broker, its WebSockets port): a plain listener (the helper's) and a WebSockets one."""
    port = free_port()
    b = anybroker_factory("listener %d 127.0.0.1\nprotocol websockets\n" % port)
    assert wait_port(port), "no WebSockets listener on %d" % port  # opened after the plain one
    return b, port


@pytest.mark.parametrize("path", ["/mqtt", "/"])
def test_publish_and_receive_over_websockets(wsbroker, cbin, path):
    """QoS 0, 1 and 2 round trips, and a 300 kB payload: more than one of libmidge's masked
    frames (256 kB) on the way in, a 64-bit frame length on the way out. (70 kB through
    mosquitto, whose libwebsockets listener takes seconds for 300 kB: a 64-bit length still.)"""
    b, port = wsbroker
    big = "300000" if type(b).__name__ == "Midge" else "70000"
    lines, _ = run([cbin("mgtest"), "-p", str(port), "-w", path, "-i", "ws-rt",
                    "connect", "sub", "ws/rt", "2",
                    "pub", "ws/rt", "zero", "0", "0", "pub", "ws/rt", "one", "1", "0",
                    "pub", "ws/rt", "two", "2", "0", "recv", "3", "10000",
                    "pubbig", "ws/rt", big, "1", "recv", "4", "10000", "disconnect"],
                   timeout=60)
    assert "ws_set_options rc=0" in lines and "connect rc=0" in lines
    for p in ("payload=zero", "payload=one", "payload=two"):
        assert any(p in ln for ln in lines), (p, lines)
    assert any("len=%s pattern_errors=0" % big in ln for ln in lines), lines


class Recorder:
    """Accepts one connection, records the request head, answers with `answer(key)`."""

    def __init__(self, answer):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.srv.settimeout(20)
        self.port = self.srv.getsockname()[1]
        self.head = b""
        self.answer = answer
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        try:
            c, _ = self.srv.accept()
        except OSError:
            return
        with c:
            c.settimeout(10)
            while b"\r\n\r\n" not in self.head:
                d = c.recv(4096)
                if not d:
                    return
                self.head += d
            key = [ln.split(b":", 1)[1].strip() for ln in self.head.split(b"\r\n")
                   if ln.lower().startswith(b"sec-websocket-key:")][0]
            c.sendall(self.answer(key))
            try:
                c.recv(4096)
            except OSError:
                pass

    def close(self):
        self.t.join(20)
        self.srv.close()


def accept(key):
    return base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())


def test_upgrade_request_carries_path_host_and_headers(cbin):
    r = Recorder(lambda k: b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    lines, _ = run([cbin("mgtest"), "-p", str(r.port), "-d", "-w", "/ws/path?x=1",
                    "-H", "Authorization: Bearer abc\nX-Two: 2", "connect"], timeout=30)
    r.close()
    head = r.head.split(b"\r\n")
    assert head[0] == b"GET /ws/path?x=1 HTTP/1.1"
    assert b"Host: 127.0.0.1:%d" % r.port in head
    for h in (b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Version: 13",
              b"Sec-WebSocket-Protocol: mqtt", b"Authorization: Bearer abc", b"X-Two: 2"):
        assert h in head, (h, head)
    key = [h for h in head if h.startswith(b"Sec-WebSocket-Key: ")][0][19:]
    assert len(base64.b64decode(key)) == 16
    assert "connect rc=%d" % PROTOCOL in lines, lines
    assert any("WebSocket handshake" in ln and "HTTP 404 Not Found" in ln for ln in lines), lines


@pytest.mark.parametrize("answer,why", [
    (lambda k: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", "Sec-WebSocket-Accept"),
    (lambda k: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Accept: " + accept(k) + b"\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
     "Sec-WebSocket-Accept or -Protocol"),
    (lambda k: b"\x20\x02\x00\x00", "not HTTP"),
])
def test_a_wrong_upgrade_answer_fails_the_connect(cbin, answer, why):
    r = Recorder(answer)
    lines, _ = run([cbin("mgtest"), "-p", str(r.port), "-d", "-w", "/mqtt", "connect"], timeout=30)
    r.close()
    assert "connect rc=%d" % PROTOCOL in lines, lines
    assert any(why in ln for ln in lines), lines


def test_bad_options_are_refused(cbin):
    for args in (["-w", "mqtt"], ["-w", "/a b"], ["-w", "/mqtt", "-H", "NoColon"],
                 ["-w", "/mqtt", "-H", "A: b\n\nC: d"]):
        lines, _ = run([cbin("mgtest"), "-p", "1"] + args, timeout=30)
        assert "ws_set_options rc=%d" % INVAL in lines, (args, lines)
