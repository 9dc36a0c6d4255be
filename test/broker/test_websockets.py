"""MQTT over WebSockets (RFC 6455, MQTT 3.1.1 section 6 / 5.0 section 6) on a `protocol
websockets` listener, and the plain HTTP it answers on the same port (http_dir).

Frames are built and parsed by hand (test/ws_raw.py) and checked byte by byte where RFC 6455
fixes the bytes: the close codes (1002 protocol error, 1003 a text frame, 1009 too big), a
pong echoing its ping, the close handshake. One broker serves the module (a WebSockets
listener alone, bound to 127.0.0.1, with http_dir); tests that need another start their own.
"""

import os
import socket
import struct
import subprocess
import sys
import time

import pytest

import mqtt_raw
from conftest import IS_MIDGE, IS_MOSQUITTO, Broker, free_port
from ws_raw import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, WsConn, WsMqtt,
                    frame, http_request, upgrade_request)

CONNACK_OK = b"\x20\x02\x00\x00"
PAGE = b"<!doctype html><title>midge</title><p>hello</p>\n"


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    d = tmp_path_factory.mktemp("www")
    (d / "index.html").write_bytes(PAGE)
    (d / "app.js").write_bytes(b"console.log('midge');\n")
    (d / "style.css").write_bytes(b"p { color: red }\n")
    (d / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (d / "sub").mkdir()
    (d / "sub" / "a b.txt").write_bytes(b"spaced\n")
    secret = d.parent / "secret.txt"
    secret.write_bytes(b"outside http_dir\n")
    os.symlink(str(secret), str(d / "link-out.txt"))
    return d


@pytest.fixture(scope="module")
def wsb(tmp_path_factory, www):
    """A broker whose only listener is a WebSockets one on 127.0.0.1 (mosquitto also gets a
    plain listener: 2.0 does not start with a WebSockets listener alone)."""
    tmp = tmp_path_factory.mktemp("wsb")
    port = free_port()
    extra = ["listener %d 127.0.0.1" % port, "protocol websockets", "http_dir %s" % www]
    if IS_MOSQUITTO:
        extra = ["listener %d 127.0.0.1" % free_port()] + extra
        if os.geteuid() == 0:
            extra.append("user root")  # else it drops to user mosquitto, who cannot read tmp
    b = Broker(tmp, threads=1, extra=extra, listener=False, port=port, name="ws")
    yield b
    b.stop()


# ---- a real client ----

PAHO = r"""
import sys, threading, paho.mqtt.client as mqtt
port = int(sys.argv[1])
got, done = [], threading.Event()
def on_message(c, u, m):
    got.append((m.topic, m.qos, m.payload))
    if len(got) == 3:
        done.set()
sub = mqtt.Client("paho-ws-sub", transport="websockets")
sub.ws_set_options(path="/mqtt")
sub.on_message = on_message
sub.connect("127.0.0.1", port)
sub.subscribe("paho/ws/#", 2)
sub.loop_start()
pub = mqtt.Client("paho-ws-pub", transport="websockets")
pub.connect("127.0.0.1", port)
pub.loop_start()
import time
deadline = time.time() + 10
while not sub.is_connected() and time.time() < deadline: time.sleep(0.01)
time.sleep(0.2)  # paho has no SUBACK wait in loop_start; the retained message covers a race
pub.publish("paho/ws/r", b"retained", qos=1, retain=True).wait_for_publish()
pub.publish("paho/ws/big", b"x" * 100000, qos=2).wait_for_publish()
pub.publish("paho/ws/q0", b"zero", qos=0).wait_for_publish()
ok = done.wait(10)
pub.disconnect(); sub.disconnect(); pub.loop_stop(); sub.loop_stop()
print(sorted((t, q, len(p)) for t, q, p in got))
sys.exit(0 if ok else 1)
"""


def test_paho_over_websockets_publishes_and_receives(wsb):
    """paho-mqtt 1.6 with transport="websockets", QoS 0, 1 and 2, a 100 kB payload."""
    r = subprocess.run(["/usr/bin/python3", "-c", PAHO, str(wsb.port)], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == (b"[('paho/ws/big', 2, 100000), ('paho/ws/q0', 0, 4), "
                                b"('paho/ws/r', 1, 8)]")


# ---- the opening handshake ----

def test_upgrade_answers_101_with_accept_and_mqtt_subprotocol(wsb):
    """RFC 6455 4.2.2: 101, Upgrade, Connection, Sec-WebSocket-Accept for the key (the RFC's
    own example key), and the subprotocol chosen from those offered ([MQTT-6.0.0-3])."""
    s = socket.create_connection(("127.0.0.1", wsb.port), timeout=5)
    try:
        req, key = upgrade_request("/mqtt", "mqtt", key="dGhlIHNhbXBsZSBub25jZQ==")
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        head = data.split(b"\r\n\r\n")[0].split(b"\r\n")
        assert head[0] == b"HTTP/1.1 101 Switching Protocols"
        hdrs = {ln.split(b":", 1)[0].lower(): ln.split(b":", 1)[1].strip() for ln in head[1:]}
        assert hdrs[b"sec-websocket-accept"] == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3
        assert hdrs[b"upgrade"].lower() == b"websocket"
        assert hdrs[b"connection"].lower() == b"upgrade"
        assert hdrs[b"sec-websocket-protocol"] == b"mqtt"
    finally:
        s.close()


@pytest.mark.parametrize("path", ["/", "/mqtt", "/any/path?x=1"])
@pytest.mark.parametrize("proto", ["mqtt", "mqttv3.1", "foo, mqtt"])
def test_any_path_and_either_mqtt_subprotocol_connects(wsb, path, proto):
    c = WsMqtt(wsb.port, path=path, protocols=proto)
    try:
        assert c.ws.headers["sec-websocket-protocol"] == ("mqttv3.1" if proto == "mqttv3.1" else "mqtt")
        c.send(mqtt_raw.connect("ws-path"))
        assert c.recv_raw() == CONNACK_OK
    finally:
        c.close()


@pytest.mark.midge_only
def test_upgrade_without_mqtt_subprotocol_is_400(wsb):
    req, _ = upgrade_request("/", "chat")
    assert http_request(wsb.port, req)[0] == 400
    req, _ = upgrade_request("/", None)
    assert http_request(wsb.port, req)[0] == 400


@pytest.mark.midge_only
def test_upgrade_with_another_version_is_426_naming_13(wsb):
    req, _ = upgrade_request("/", "mqtt", version=b"8")
    st, hdrs, _ = http_request(wsb.port, req)
    assert st == 426 and hdrs["sec-websocket-version"] == "13"


@pytest.mark.midge_only
@pytest.mark.parametrize("key", ["short", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ!!"])
def test_upgrade_with_a_bad_key_is_400(wsb, key):
    req, _ = upgrade_request("/", "mqtt", key=key)
    assert http_request(wsb.port, req)[0] == 400


def test_frames_sent_right_behind_the_request_are_read(wsb):
    """A client may send its first frame in the same segment as the request."""
    s = socket.create_connection(("127.0.0.1", wsb.port), timeout=5)
    try:
        req, _ = upgrade_request("/", "mqtt")
        s.sendall(req + frame(OP_BINARY, mqtt_raw.connect("ws-eager")))
        data = b""
        want = b"\r\n\r\n" + b"\x82\x04" + CONNACK_OK
        deadline = time.monotonic() + 5
        while want not in data and time.monotonic() < deadline:
            chunk = s.recv(4096)
            assert chunk, data
            data += chunk
        assert data.endswith(want), data
    finally:
        s.close()


# ---- MQTT in frames ----

def test_connack_is_one_unmasked_binary_frame(wsb):
    ws = WsConn(wsb.port)
    try:
        ws.send_frame(OP_BINARY, mqtt_raw.connect("ws-bytes"))
        assert ws.recv_frame() == (True, OP_BINARY, CONNACK_OK)
    finally:
        ws.close()


def test_mqtt_packet_split_across_frames_and_messages(wsb):
    """An MQTT packet may span WebSocket frames, and frames of separate messages: the stream
    is what counts ([MQTT-6.0.0-2])."""
    c = WsMqtt(wsb.port)
    try:
        pkt = mqtt_raw.connect("ws-split")
        # three fragments of one message, then the rest as its own message, one byte per frame
        c.ws.send_frame(OP_BINARY, pkt[:3], fin=False)
        c.ws.send_frame(OP_CONT, pkt[3:5], fin=False)
        c.ws.send_frame(OP_CONT, pkt[5:8], fin=True)
        for i in range(8, len(pkt)):
            c.ws.send_frame(OP_BINARY, pkt[i:i + 1])
        assert c.recv_raw() == CONNACK_OK
        c.subscribe([("ws/split", 0)])
        big = b"B" * 70000  # a 64-bit frame length on the way back
        c.publish("ws/split", big)
        p = c.expect(mqtt_raw.PUBLISH)
        assert p.payload == big
    finally:
        c.close()


def test_several_mqtt_packets_in_one_frame(wsb):
    ws = WsConn(wsb.port)
    try:
        burst = (mqtt_raw.connect("ws-burst") + mqtt_raw.subscribe(1, [("ws/burst", 0)]) +
                 mqtt_raw.publish("ws/burst", b"one") + mqtt_raw.pingreq())
        ws.send_frame(OP_BINARY, burst)
        got = b""
        want = CONNACK_OK + b"\x90\x03\x00\x01\x00" + mqtt_raw.publish("ws/burst", b"one") + b"\xd0\x00"
        while len(got) < len(want):
            fin, op, payload = ws.recv_frame()
            assert fin and op == OP_BINARY
            got += payload
        assert got == want
    finally:
        ws.close()


def test_ping_between_fragments_gets_pong_with_its_payload(wsb):
    """5.4 / 5.5.2: control frames may come between the fragments of a message; a ping is
    answered by a pong with the same application data, and the message still completes."""
    ws = WsConn(wsb.port)
    try:
        pkt = mqtt_raw.connect("ws-ping")
        ws.send_frame(OP_BINARY, pkt[:4], fin=False)
        ws.send_frame(OP_PING, b"are you there")
        assert ws.recv_frame() == (True, OP_PONG, b"are you there")
        ws.send_frame(OP_PONG, b"unsolicited")  # 5.5.3: ignored
        ws.send_frame(OP_CONT, pkt[4:], fin=True)
        assert ws.recv_frame() == (True, OP_BINARY, CONNACK_OK)
        ws.send_frame(OP_PING, b"")
        assert ws.recv_frame() == (True, OP_PONG, b"")
    finally:
        ws.close()


@pytest.mark.mosquitto_xfail("libwebsockets does not echo the close status")
def test_close_handshake_echoes_status_and_ends_stream(wsb):
    """5.5.1: a close is answered with a close (echoing the status), then the server closes
    the TCP connection."""
    ws = WsConn(wsb.port)
    try:
        ws.send_frame(OP_BINARY, mqtt_raw.connect("ws-close"))
        assert ws.recv_frame()[2] == CONNACK_OK
        ws.send_frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye")
        assert ws.recv_frame() == (True, OP_CLOSE, b"\x03\xe8")
        ws.expect_eof()
    finally:
        ws.close()


def test_close_without_status_is_answered_with_empty_close(wsb):
    ws = WsConn(wsb.port)
    try:
        ws.send_frame(OP_CLOSE, b"")
        assert ws.recv_frame() == (True, OP_CLOSE, b"")
        ws.expect_eof()
    finally:
        ws.close()


def test_publish_then_close_in_one_segment_is_delivered(wsb):
    """Data ahead of a close frame in the same read is handled before the close."""
    sub = WsMqtt(wsb.port)
    ws = WsConn(wsb.port)
    try:
        sub.connect("ws-pc-sub")
        sub.subscribe([("ws/pc", 0)])
        ws.send(frame(OP_BINARY, mqtt_raw.connect("ws-pc-pub")))
        assert ws.recv_frame()[2] == CONNACK_OK
        ws.send(frame(OP_BINARY, mqtt_raw.publish("ws/pc", b"last words")) +
                frame(OP_CLOSE, struct.pack("!H", 1000)))
        assert ws.recv_frame() == (True, OP_CLOSE, b"\x03\xe8")
        assert sub.expect(mqtt_raw.PUBLISH).payload == b"last words"
    finally:
        ws.close()
        sub.close()


# ---- broken rules: a close frame with the code, then the end ----

def _after_connect(wsb, cid):
    ws = WsConn(wsb.port)
    ws.send_frame(OP_BINARY, mqtt_raw.connect(cid))
    assert ws.recv_frame()[2] == CONNACK_OK
    return ws


BROKEN = {
    # 5.1: a client masks every frame
    "unmasked": (frame(OP_BINARY, mqtt_raw.pingreq(), mask=False), 1002),
    # MQTT-6.0.0-1: MQTT goes in binary frames; a text frame gets 1003
    "text": (frame(OP_TEXT, b"\xc0\x00"), 1003),
    # 5.2: RSV bits without a negotiated extension
    "rsv1": (frame(OP_BINARY, mqtt_raw.pingreq(), rsv=4), 1002),
    # 5.2: reserved opcodes
    "opcode3": (frame(3, b"x"), 1002),
    "opcode11": (frame(11, b"x"), 1002),
    # 5.4: a continuation with no message begun
    "lone-continuation": (frame(OP_CONT, mqtt_raw.pingreq()), 1002),
    # 5.4: a new data message inside a fragmented one
    "interleaved": (frame(OP_BINARY, b"\xc0", fin=False) + frame(OP_BINARY, b"\x00"), 1002),
    # 5.5: control frames are not fragmented and carry at most 125 bytes
    "fragmented-ping": (frame(OP_PING, b"x", fin=False), 1002),
    "long-ping": (frame(OP_PING, b"x" * 126), 1002),
    # 5.2: the minimal number of bytes for the length
    "non-minimal-16": (frame(OP_BINARY, b"\xc0\x00")[:1] + b"\xfe\x00\x02" + b"\x00\x00\x00\x00" + b"\xc0\x00", 1002),
    # 5.2: the 64-bit length's top bit must be 0
    "length-msb": (b"\x82\xff" + b"\x80" + b"\x00" * 7 + b"\x00\x00\x00\x00", 1002),
    # 1009: a frame announcing more than the largest MQTT packet
    "too-big": (b"\x82\xff" + struct.pack("!Q", 1 << 40) + b"\x00\x00\x00\x00", 1009),
    # 7.4: a close code nobody may send; 1 byte of close payload
    "close-1005": (frame(OP_CLOSE, struct.pack("!H", 1005)), 1002),
    "close-1byte": (frame(OP_CLOSE, b"\x03"), 1002),
    # 5.5.1 / 8.1: a close reason that is not UTF-8
    "close-bad-utf8": (frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xc3\x28"), 1007),
}


@pytest.mark.midge_only
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_rule_gets_close_code(wsb, case):
    data, code = BROKEN[case]
    ws = _after_connect(wsb, "ws-broken-" + case)
    try:
        ws.send(data)
        ws.expect_close(code)
    finally:
        ws.close()
    wsb.wait_log(r"ws-broken-%s \(127\.0\.0\.1\): WebSocket protocol error \(close %d\)" % (case, code))


@pytest.mark.midge_only
def test_too_big_fragmented_message_is_1009(wsb):
    """The limit counts the whole message: fragments whose sum passes it get 1009 at the
    fragment that crosses it (announced lengths: nothing that large is sent)."""
    ws = _after_connect(wsb, "ws-big-frag")
    try:
        ws.send(frame(OP_BINARY, b"\x30", fin=False) +
                b"\x00\xff" + struct.pack("!Q", 268435460) + b"\x00\x00\x00\x00")
        ws.expect_close(1009)
    finally:
        ws.close()


# ---- plain HTTP on the same port ----

@pytest.mark.midge_only
@pytest.mark.parametrize("name,ctype,body", [
    ("/", "text/html; charset=utf-8", PAGE),
    ("/index.html", "text/html; charset=utf-8", PAGE),
    ("/app.js", "text/javascript; charset=utf-8", b"console.log('midge');\n"),
    ("/style.css", "text/css; charset=utf-8", b"p { color: red }\n"),
    ("/pic.png", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
    ("/sub/a%20b.txt", "text/plain; charset=utf-8", b"spaced\n"),
    ("/index.html?v=3", "text/html; charset=utf-8", PAGE),
])
def test_http_dir_serves_files_with_content_type(wsb, name, ctype, body):
    st, hdrs, got = http_request(wsb.port, b"GET " + name.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 200
    assert hdrs["content-type"] == ctype
    assert int(hdrs["content-length"]) == len(body)
    assert got == body


@pytest.mark.midge_only
def test_head_has_headers_and_no_body(wsb):
    st, hdrs, got = http_request(wsb.port, b"HEAD /app.js HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 200 and int(hdrs["content-length"]) == 22 and got == b""


@pytest.mark.midge_only
@pytest.mark.parametrize("target", [
    "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2e%2fsecret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/./index.html", "/a\\..\\secret.txt",
    "/%00", "/%zz",
])
def test_http_dir_refuses_paths_out_of_it(wsb, target):
    st, _, body = http_request(wsb.port, b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 400, (target, st)
    assert b"outside" not in body


@pytest.mark.midge_only
def test_http_dir_symlink_out_of_it_is_404(wsb):
    st, _, body = http_request(wsb.port, b"GET /link-out.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert st == 404 and b"outside" not in body


@pytest.mark.midge_only
def test_http_missing_file_and_directory_are_404(wsb):
    assert http_request(wsb.port, b"GET /nope.html HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404
    assert http_request(wsb.port, b"GET /sub HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404


@pytest.mark.midge_only
@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"OPTIONS"])
def test_http_other_methods_are_405_with_allow(wsb, method):
    st, hdrs, _ = http_request(wsb.port, method + b" / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert st == 405 and hdrs["allow"] == "GET, HEAD"


@pytest.mark.midge_only
@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\nHost: x\n\n",                 # bare LF
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",           # not HTTP/1.x
    b"GET /  HTTP/1.1\r\nHost: x\r\n\r\n",          # two spaces
    b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",          # obsolete line folding
    b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",          # not a token
    b"GET / HTTP/1.1\r\nHost: x\x01\r\n\r\n",       # control character
    b"GET / HTTP/1.1\r\n\r\n",                      # HTTP/1.1 without Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # two Hosts
    b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00",  # MQTT on the WebSockets port
])
def test_http_malformed_requests_are_400(wsb, raw):
    assert http_request(wsb.port, raw)[0] == 400


@pytest.mark.midge_only
def test_http_head_larger_than_websockets_headers_size_is_431(wsb):
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 5000 + b"\r\n\r\n"
    assert http_request(wsb.port, raw)[0] == 431


# ---- the listener ----

@pytest.mark.midge_only
def test_websockets_listener_alone_honours_its_bind_address(tmp_path):
    """mosquitto 2.0 ignores a WebSockets listener's address (its issues 2284, 2578): midge
    binds 127.0.0.2 only, so 127.0.0.1 on that port is refused."""
    port = free_port()
    # the harness waits on 127.0.0.1: started by hand, waited for on 127.0.0.2
    conf = tmp_path / "bind.conf"
    conf.write_text("listener %d 127.0.0.2\nprotocol websockets\nallow_anonymous true\n" % port)
    from harness import broker_argv, broker_env
    log = open(str(tmp_path / "bind.log"), "wb")
    p = subprocess.Popen(broker_argv(str(conf)), stdout=log, stderr=subprocess.STDOUT,
                         env=broker_env(), stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.2", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and p.poll() is None, "not listening"
                time.sleep(0.05)
        c = WsMqtt(port, host="127.0.0.2")
        c.connect("ws-bound")
        c.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
    finally:
        p.terminate()
        assert p.wait(timeout=10) == 0
        log.close()


# ---- the handshake deadline ----

def _closed_within(sock, seconds):
    """Seconds until the broker closed sock (end of stream or reset), or None if it did not
    within `seconds` (whatever it sent before closing is read and dropped)."""
    t0 = time.monotonic()
    sock.settimeout(seconds)
    try:
        while True:
            if not sock.recv(4096):
                return time.monotonic() - t0
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - t0
    except socket.timeout:
        return None


@pytest.mark.midge_only
def test_silent_and_half_sent_upgrades_are_closed_by_the_deadline(wsb):
    """A connection that sends nothing, and one that stops in the middle of its upgrade request
    (slowloris), are closed by the connect deadline (10 s, as a plain MQTT connection's first
    packet); a client that upgrades meanwhile is served normally."""
    silent = socket.create_connection(("127.0.0.1", wsb.port), timeout=5)
    half = socket.create_connection(("127.0.0.1", wsb.port), timeout=5)
    req, _ = upgrade_request("/mqtt")
    half.sendall(req[:len(req) // 2])
    c = WsMqtt(wsb.port)  # upgrades and speaks MQTT while the other two hang
    c.send(mqtt_raw.connect("ws-deadline-bystander"))
    assert c.recv_raw() == CONNACK_OK
    try:
        for s in (silent, half):
            took = _closed_within(s, 30)
            assert took is not None, "a stalled upgrade was still open after 30 s"
    finally:
        silent.close()
        half.close()
    c.send(mqtt_raw.pingreq())
    assert c.recv_raw() == b"\xd0\x00"
    c.close()
