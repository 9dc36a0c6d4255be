"""A tiny MQTT 3.1 / 3.1.1 / 5.0 packet builder and parser for broker tests.

Written from the OASIS specifications, independently of midge's C codec (proto/), so the
broker is never tested only against its own encoder. Everything here is deliberately
simple: whole packets are built as bytes, and replies are read one packet at a time from a
socket that always has a timeout, so a hung broker fails a test instead of hanging the suite.
"""

import socket
import struct
import time

# Packet types (fixed header, high nibble)
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}

# MQTT 5 property identifiers (spec 2.2.2.2) and how each value is encoded
P_PAYLOAD_FORMAT = 0x01
P_MESSAGE_EXPIRY = 0x02
P_CONTENT_TYPE = 0x03
P_RESPONSE_TOPIC = 0x08
P_CORRELATION_DATA = 0x09
P_SUBSCRIPTION_ID = 0x0B
P_SESSION_EXPIRY = 0x11
P_ASSIGNED_CLIENT_ID = 0x12
P_SERVER_KEEP_ALIVE = 0x13
P_AUTH_METHOD = 0x15
P_AUTH_DATA = 0x16
P_REQUEST_PROBLEM_INFO = 0x17
P_WILL_DELAY = 0x18
P_REQUEST_RESPONSE_INFO = 0x19
P_RESPONSE_INFO = 0x1A
P_SERVER_REFERENCE = 0x1C
P_REASON_STRING = 0x1F
P_RECEIVE_MAXIMUM = 0x21
P_TOPIC_ALIAS_MAXIMUM = 0x22
P_TOPIC_ALIAS = 0x23
P_MAXIMUM_QOS = 0x24
P_RETAIN_AVAILABLE = 0x25
P_USER_PROPERTY = 0x26
P_MAXIMUM_PACKET_SIZE = 0x27
P_WILDCARD_SUB_AVAILABLE = 0x28
P_SUB_ID_AVAILABLE = 0x29
P_SHARED_SUB_AVAILABLE = 0x2A

_BYTE = {0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A}
_TWO = {0x13, 0x21, 0x22, 0x23}
_FOUR = {0x02, 0x11, 0x18, 0x27}
_VARINT = {0x0B}
_STR = {0x03, 0x08, 0x12, 0x15, 0x1A, 0x1C, 0x1F}
_BIN = {0x09, 0x16}
_PAIR = {0x26}


# ---------------------------------------------------------------- encoding primitives

def varint(n):
    """Variable Byte Integer (spec 1.5.5 / 2.2.3)."""
    assert 0 <= n <= 268435455
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def s(text):
    """UTF-8 Encoded String: 2-byte length + bytes. Accepts bytes to send invalid UTF-8."""
    b = text if isinstance(text, (bytes, bytearray)) else text.encode("utf-8")
    return u16(len(b)) + bytes(b)


def bin_(data):
    return u16(len(data)) + bytes(data)


def props(items):
    """Encode a property list. items: list of (id, value) pairs (user property value: (k, v))."""
    if items is None:
        return b""
    body = bytearray()
    for pid, val in items:
        body += varint(pid)
        if pid in _BYTE:
            body.append(val)
        elif pid in _TWO:
            body += u16(val)
        elif pid in _FOUR:
            body += u32(val)
        elif pid in _VARINT:
            body += varint(val)
        elif pid in _STR:
            body += s(val)
        elif pid in _BIN:
            body += bin_(val)
        elif pid in _PAIR:
            body += s(val[0]) + s(val[1])
        else:
            raise ValueError("unknown property %#x" % pid)
    return varint(len(body)) + bytes(body)


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + bytes(body)


# ---------------------------------------------------------------- packet builders

def connect(client_id="", version=4, clean=True, keepalive=60, will=None, username=None,
            password=None, properties=None, reserved=False, proto_name=None):
    """CONNECT. version: 3 (MQIsdp), 4 (3.1.1), 5. will: dict(topic, payload, qos, retain,
    properties). properties: list of (id, value) for 5.0 (an empty list if None)."""
    if proto_name is None:
        proto_name = "MQIsdp" if version == 3 else "MQTT"
    flags = 0
    if clean:
        flags |= 0x02
    if will:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    if reserved:
        flags |= 0x01
    body = s(proto_name) + bytes([version, flags]) + u16(keepalive)
    if version == 5:
        body += props(properties or [])
    body += s(client_id)
    if will:
        if version == 5:
            body += props(will.get("properties") or [])
        body += s(will["topic"]) + bin_(will.get("payload", b""))
    if username is not None:
        body += s(username)
    if password is not None:
        body += bin_(password if isinstance(password, bytes) else password.encode())
    return packet(CONNECT, 0, body)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, version=4,
            properties=None):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = s(topic)
    if qos > 0:
        body += u16(pid if pid is not None else 1)
    if version == 5:
        body += props(properties or [])
    return packet(PUBLISH, flags, body + payload)


def _ack(ptype, flags, pid, version, reason, properties):
    body = u16(pid)
    if version == 5 and (reason or properties):
        body += bytes([reason])
        if properties:
            body += props(properties)
    return packet(ptype, flags, body)


def puback(pid, version=4, reason=0, properties=None):
    return _ack(PUBACK, 0, pid, version, reason, properties)


def pubrec(pid, version=4, reason=0, properties=None):
    return _ack(PUBREC, 0, pid, version, reason, properties)


def pubrel(pid, version=4, reason=0, properties=None):
    return _ack(PUBREL, 2, pid, version, reason, properties)


def pubcomp(pid, version=4, reason=0, properties=None):
    return _ack(PUBCOMP, 0, pid, version, reason, properties)


def subscribe(pid, filters, version=4, properties=None, flags=2):
    """filters: list of (filter, options byte) or plain strings (options 0 = QoS 0)."""
    body = u16(pid)
    if version == 5:
        body += props(properties or [])
    for f in filters:
        if isinstance(f, str):
            f = (f, 0)
        body += s(f[0]) + bytes([f[1]])
    return packet(SUBSCRIBE, flags, body)


def unsubscribe(pid, filters, version=4, properties=None):
    body = u16(pid)
    if version == 5:
        body += props(properties or [])
    for f in filters:
        body += s(f)
    return packet(UNSUBSCRIBE, 2, body)


def pingreq():
    return b"\xc0\x00"


def disconnect(version=4, reason=None, properties=None):
    if version == 5 and reason is not None:
        body = bytes([reason]) + (props(properties) if properties else b"")
        return packet(DISCONNECT, 0, body)
    return b"\xe0\x00"


# ---------------------------------------------------------------- parsing

def decode_varint(buf, pos):
    mult, val = 1, 0
    for _ in range(4):
        b = buf[pos]
        pos += 1
        val += (b & 0x7F) * mult
        if not b & 0x80:
            return val, pos
        mult *= 128
    raise ValueError("malformed variable byte integer")


def decode_props(buf, pos):
    """Returns (list of (id, value), new pos)."""
    length, pos = decode_varint(buf, pos)
    end = pos + length
    out = []
    while pos < end:
        pid, pos = decode_varint(buf, pos)
        if pid in _BYTE:
            val = buf[pos]
            pos += 1
        elif pid in _TWO:
            val = struct.unpack_from("!H", buf, pos)[0]
            pos += 2
        elif pid in _FOUR:
            val = struct.unpack_from("!I", buf, pos)[0]
            pos += 4
        elif pid in _VARINT:
            val, pos = decode_varint(buf, pos)
        elif pid in _STR or pid in _BIN:
            n = struct.unpack_from("!H", buf, pos)[0]
            val = bytes(buf[pos + 2:pos + 2 + n])
            if pid in _STR:
                val = val.decode("utf-8")
            pos += 2 + n
        elif pid in _PAIR:
            n = struct.unpack_from("!H", buf, pos)[0]
            k = bytes(buf[pos + 2:pos + 2 + n]).decode("utf-8")
            pos += 2 + n
            n = struct.unpack_from("!H", buf, pos)[0]
            v = bytes(buf[pos + 2:pos + 2 + n]).decode("utf-8")
            pos += 2 + n
            val = (k, v)
        else:
            raise ValueError("unknown property id %#x" % pid)
        out.append((pid, val))
    if pos != end:
        raise ValueError("property length mismatch")
    return out, end


class Props(list):
    """A property list with convenient lookups."""

    def get(self, pid, default=None):
        for k, v in self:
            if k == pid:
                return v
        return default

    def all(self, pid):
        return [v for k, v in self if k == pid]


class Packet:
    def __init__(self, raw, version=4):
        self.raw = bytes(raw)
        self.type = raw[0] >> 4
        self.flags = raw[0] & 0x0F
        _, pos = decode_varint(raw, 1)
        self.body = self.raw[pos:]
        self.version = version
        self.props = Props()
        self.reason = None
        if self.type == PUBLISH:
            self._parse_publish()
        elif self.type == CONNACK:
            self.session_present = self.body[0] & 1
            self.reason = self.body[1]
            if version == 5 and len(self.body) > 2:
                p, _ = decode_props(self.body, 2)
                self.props = Props(p)
        elif self.type in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            self.pid = struct.unpack_from("!H", self.body, 0)[0]
            self.reason = self.body[2] if len(self.body) > 2 else 0
            if len(self.body) > 3:
                p, _ = decode_props(self.body, 3)
                self.props = Props(p)
        elif self.type in (SUBACK, UNSUBACK):
            self.pid = struct.unpack_from("!H", self.body, 0)[0]
            pos = 2
            if version == 5:
                p, pos = decode_props(self.body, 2)
                self.props = Props(p)
            self.codes = list(self.body[pos:])
        elif self.type == DISCONNECT:
            self.reason = self.body[0] if self.body else 0
            if len(self.body) > 1:
                p, _ = decode_props(self.body, 1)
                self.props = Props(p)

    def _parse_publish(self):
        self.dup = bool(self.flags & 0x08)
        self.qos = (self.flags >> 1) & 3
        self.retain = bool(self.flags & 1)
        n = struct.unpack_from("!H", self.body, 0)[0]
        self.topic = self.body[2:2 + n].decode("utf-8")
        pos = 2 + n
        self.pid = None
        if self.qos:
            self.pid = struct.unpack_from("!H", self.body, pos)[0]
            pos += 2
        if self.version == 5:
            p, pos = decode_props(self.body, pos)
            self.props = Props(p)
        self.payload = self.body[pos:]

    @property
    def name(self):
        return NAMES.get(self.type, "?")

    def __repr__(self):
        return "<%s %s>" % (self.name, self.raw[:64].hex(" "))


class Closed(Exception):
    """The broker closed the connection."""


class RawClient:
    """One TCP connection speaking hand-built MQTT. Every read has a deadline."""

    def __init__(self, port, version=4, timeout=5.0, host="127.0.0.1", rcvbuf=None):
        self.version = version
        self.timeout = timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = bytearray()

    # -- sending
    def send(self, data):
        self.sock.sendall(data)

    # -- receiving
    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no packet from the broker in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no packet from the broker in time")
        except (ConnectionResetError, BrokenPipeError):
            raise Closed("connection reset")
        if not chunk:
            raise Closed("connection closed")
        self.buf += chunk

    def recv(self, timeout=None):
        """Next whole packet, or raises TimeoutError / Closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if len(self.buf) >= 2:
                try:
                    length, pos = decode_varint(self.buf, 1)
                except IndexError:
                    length = None
                if length is not None and len(self.buf) >= pos + length:
                    raw = bytes(self.buf[:pos + length])
                    del self.buf[:pos + length]
                    return Packet(raw, self.version)
            self._fill(deadline)

    def recv_raw(self, timeout=None):
        return self.recv(timeout).raw

    def expect(self, ptype, timeout=None):
        p = self.recv(timeout)
        assert p.type == ptype, "expected %s, got %r" % (NAMES[ptype], p)
        return p

    def expect_nothing(self, timeout=0.5):
        """Asserts that no packet arrives within timeout (the connection may stay open)."""
        try:
            p = self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError("unexpected packet %r" % p)

    def expect_closed(self, timeout=None, allow_disconnect=True):
        """Waits until the broker closes the connection. Returns the packets received
        before the close (a 5.0 DISCONNECT may be among them)."""
        got = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                p = self.recv(max(0.01, deadline - time.monotonic()))
            except Closed:
                return got
            except TimeoutError:
                raise AssertionError("broker did not close the connection; got %r" % got)
            got.append(p)
            if not allow_disconnect:
                raise AssertionError("packet before close: %r" % p)

    def is_open(self, timeout=0.3):
        """True if the connection is still open (no EOF within timeout)."""
        try:
            self.recv(timeout)
        except TimeoutError:
            return True
        except Closed:
            return False
        return True

    # -- conveniences
    def connect(self, client_id="", expect_rc=0, **kw):
        kw.setdefault("version", self.version)
        self.send(connect(client_id, **kw))
        p = self.expect(CONNACK)
        if expect_rc is not None:
            assert p.reason == expect_rc, "CONNACK %r" % p
        return p

    def subscribe(self, filters, pid=1, **kw):
        kw.setdefault("version", self.version)
        self.send(subscribe(pid, filters, **kw))
        p = self.expect(SUBACK)
        assert p.pid == pid
        return p

    def publish(self, topic, payload=b"", qos=0, pid=1, **kw):
        """Publishes and completes the QoS handshake. Returns the last ack packet or None."""
        kw.setdefault("version", self.version)
        self.send(publish(topic, payload, qos=qos, pid=pid, **kw))
        if qos == 1:
            return self.expect(PUBACK)
        if qos == 2:
            rec = self.expect(PUBREC)
            assert rec.pid == pid
            self.send(pubrel(pid))
            return self.expect(PUBCOMP)
        return None

    def recv_publish(self, timeout=None, ack=True):
        """Next PUBLISH; QoS 1/2 are acknowledged (QoS 2 handshake completed) if ack."""
        p = self.expect(PUBLISH, timeout)
        if ack and p.qos == 1:
            self.send(puback(p.pid))
        elif ack and p.qos == 2:
            self.send(pubrec(p.pid))
            rel = self.expect(PUBREL, timeout)
            assert rel.pid == p.pid
            self.send(pubcomp(p.pid))
        return p

    def collect(self, n, timeout=None, ack=True):
        """Receives n PUBLISH packets, completing every QoS 1/2 handshake as packets
        interleave (PUBREL answered with PUBCOMP). Returns the PUBLISH packets in order."""
        got, pending = [], set()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while len(got) < n or pending:
            p = self.recv(max(0.01, deadline - time.monotonic()))
            if p.type == PUBLISH:
                got.append(p)
                if ack and p.qos == 1:
                    self.send(puback(p.pid))
                elif ack and p.qos == 2:
                    self.send(pubrec(p.pid))
                    pending.add(p.pid)
            elif p.type == PUBREL:
                self.send(pubcomp(p.pid))
                pending.discard(p.pid)
            else:
                raise AssertionError("unexpected %r" % p)
        return got

    def disconnect(self, **kw):
        kw.setdefault("version", self.version)
        try:
            self.send(disconnect(**kw))
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with a RST: an abnormal network close."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()
