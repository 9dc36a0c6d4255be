"""Hand-written RFC 6455 for the tests: an opening handshake and frames built and parsed byte by
byte here, independent of net/ws.c, so the broker's WebSocket code is never tested only
against itself.

  ws = WsConn(port)                      # GET / with Sec-WebSocket-Protocol: mqtt, 101 checked
  ws.send_frame(OP_BINARY, b"...")       # masked, FIN, as a client must
  fin, op, payload = ws.recv_frame()     # the server's frame, checked to be unmasked
  c = WsMqtt(port); c.connect("id")      # mqtt_raw.RawClient over WebSocket binary frames
"""

import base64
import hashlib
import os
import socket
import ssl
import struct
import time

import mqtt_raw

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def frame(op, payload=b"", fin=True, mask=True, rsv=0, key=None, length=None):
    """One frame's bytes. length overrides the announced payload length (lies are tests)."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | op
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = key if key is not None else os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def _connect(host, port, timeout, ssl_ctx):
    s = socket.create_connection((host, port), timeout=timeout)
    return ssl_ctx.wrap_socket(s, server_hostname="localhost") if ssl_ctx else s


def http_request(port, raw, timeout=5.0, host="127.0.0.1", ssl_ctx=None):
    """Send raw bytes, read until the server closes; returns (status, headers dict, body).
    ssl_ctx: over TLS (an ssl.SSLContext that trusts the broker's CA)."""
    with _connect(host, port, timeout, ssl_ctx) as s:
        s.sendall(raw)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1]) if lines and lines[0].startswith(b"HTTP/1.1 ") else None
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    return status, headers, body


def upgrade_request(path="/", protocols="mqtt", key=None, extra=b"", version=b"13"):
    key = key or base64.b64encode(os.urandom(16)).decode()
    req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key.encode() + b"\r\n"
           b"Sec-WebSocket-Version: " + version + b"\r\n")
    if protocols is not None:
        req += b"Sec-WebSocket-Protocol: " + protocols.encode() + b"\r\n"
    return req + extra + b"\r\n", key


class WsConn:
    """A raw WebSocket client connection. Every read has a deadline."""

    def __init__(self, port, path="/", protocols="mqtt", timeout=5.0, host="127.0.0.1",
                 handshake=True, ssl_ctx=None):
        self.timeout = timeout
        self.sock = _connect(host, port, timeout, ssl_ctx)
        self.buf = bytearray()
        self.headers = {}
        if handshake:
            req, key = upgrade_request(path, protocols)
            self.sock.sendall(req)
            head = self._read_head()
            lines = head.split(b"\r\n")
            assert lines[0] == b"HTTP/1.1 101 Switching Protocols", head
            for ln in lines[1:]:
                k, _, v = ln.partition(b":")
                self.headers[k.strip().lower().decode()] = v.strip().decode()
            assert self.headers["upgrade"].lower() == "websocket", head
            assert self.headers["connection"].lower() == "upgrade", head
            assert self.headers["sec-websocket-accept"] == accept_for(key), head

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("nothing from the broker in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("nothing from the broker in time")
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            raise mqtt_raw.Closed("connection reset")
        if not chunk:
            raise mqtt_raw.Closed("connection closed")
        self.buf += chunk

    def _read_head(self):
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        return head

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, op, payload=b"", **kw):
        self.sock.sendall(frame(op, payload, **kw))

    def recv_frame(self, timeout=None):
        """(fin, opcode, payload) of the server's next frame; a server frame must be unmasked
        with RSV bits clear and minimal length encoding."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            b = self.buf
            if len(b) >= 2:
                assert b[0] & 0x70 == 0, "RSV bits set: %r" % bytes(b[:2])
                assert b[1] & 0x80 == 0, "a server frame is masked: %r" % bytes(b[:2])
                n, pos = b[1] & 0x7F, 2
                if n == 126 and len(b) >= 4:
                    n, pos = struct.unpack("!H", b[2:4])[0], 4
                    assert n >= 126, "non-minimal length"
                elif n == 127 and len(b) >= 10:
                    n, pos = struct.unpack("!Q", b[2:10])[0], 10
                    assert n >= 65536, "non-minimal length"
                elif n >= 126:
                    pos = None
                if pos is not None and len(b) >= pos + n:
                    fin, op = bool(b[0] & 0x80), b[0] & 0x0F
                    payload = bytes(b[pos:pos + n])
                    del b[:pos + n]
                    return fin, op, payload
            self._fill(deadline)

    def expect_close(self, code, timeout=None):
        """The next frame is a close with this status; then the server ends the TCP stream."""
        fin, op, payload = self.recv_frame(timeout)
        assert fin and op == OP_CLOSE, "expected close %d, got op %d %r" % (code, op, payload)
        assert payload[:2] == struct.pack("!H", code), "close payload %r, wanted %d" % (payload, code)
        self.expect_eof(timeout)
        return payload

    def expect_eof(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                self._fill(deadline)
            except mqtt_raw.Closed:
                return
            except TimeoutError:
                raise AssertionError("the server did not close the connection")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class WsMqtt(mqtt_raw.RawClient):
    """mqtt_raw.RawClient whose bytes travel in WebSocket binary frames: each send() is one
    frame; what arrives is the concatenated payloads of the server's binary frames."""

    def __init__(self, port, version=4, timeout=5.0, host="127.0.0.1", path="/", protocols="mqtt",
                 ssl_ctx=None):
        self.version = version
        self.timeout = timeout
        self.ws = WsConn(port, path=path, protocols=protocols, timeout=timeout, host=host,
                         ssl_ctx=ssl_ctx)
        self.sock = self.ws.sock
        self.buf = bytearray()

    def send(self, data):
        self.ws.send_frame(OP_BINARY, data)

    def _fill(self, deadline):
        while True:
            fin, op, payload = self.ws.recv_frame(max(0.001, deadline - time.monotonic()))
            if op == OP_CLOSE:
                raise mqtt_raw.Closed("close frame %r" % payload)
            assert op in (OP_BINARY, OP_CONT), "server sent op %d" % op
            self.buf += payload
            return
