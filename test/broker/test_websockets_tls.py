"""MQTT over WebSockets over TLS (wss://): a `protocol websockets` listener with mosquitto's
TLS keywords (certfile, keyfile). The same frames, HTTP answers and clients as
test_websockets.py, inside TLS (certificates from test/tlscerts.py)."""

import os
import ssl
import struct
import subprocess
import sys

import pytest

import mqtt_raw
from conftest import IS_MOSQUITTO, MIDGE_BUILD, Broker, free_port
from tlscerts import tls_certs  # noqa: F401  (the session fixture)
from ws_raw import OP_BINARY, OP_CLOSE, OP_TEXT, WsConn, WsMqtt, frame, http_request

PAGE = b"<!doctype html><p>over https</p>\n"


@pytest.fixture(scope="module")
def wss(tmp_path_factory, tls_certs):
    tmp = tmp_path_factory.mktemp("wss")
    www = tmp / "www"
    www.mkdir()
    (www / "index.html").write_bytes(PAGE)
    port = free_port()
    extra = ["listener %d 127.0.0.1" % port, "protocol websockets", "http_dir %s" % www,
             "certfile %s" % tls_certs.server_cert, "keyfile %s" % tls_certs.server_key]
    if IS_MOSQUITTO:
        extra = ["listener %d 127.0.0.1" % free_port()] + extra
        if os.geteuid() == 0:
            extra.append("user root")  # else it drops to user mosquitto, who cannot read tmp
    b = Broker(tmp, threads=1, extra=extra, listener=False, port=port, name="wss")
    ctx = ssl.create_default_context(cafile=tls_certs.ca)
    yield b, ctx
    b.stop()


def test_mqtt_over_wss_byte_exact(wss):
    b, ctx = wss
    c = WsMqtt(b.port, ssl_ctx=ctx)
    try:
        c.send(mqtt_raw.connect("wss-bytes"))
        assert c.recv_raw() == b"\x20\x02\x00\x00"
        c.subscribe([("wss/t", 1)])
        c.send(mqtt_raw.publish("wss/t", b"x" * 70000, qos=1, pid=7))
        got = [c.recv() for _ in range(2)]
        assert sorted(p.type for p in got) == [mqtt_raw.PUBLISH, mqtt_raw.PUBACK]
        assert [p for p in got if p.type == mqtt_raw.PUBLISH][0].payload == b"x" * 70000
    finally:
        c.close()


@pytest.mark.midge_only
def test_text_frame_over_wss_gets_1003(wss):
    b, ctx = wss
    ws = WsConn(b.port, ssl_ctx=ctx)
    try:
        ws.send(frame(OP_TEXT, b"\xc0\x00"))
        fin, op, payload = ws.recv_frame()
        assert (fin, op, payload[:2]) == (True, OP_CLOSE, struct.pack("!H", 1003))
    finally:
        ws.close()


@pytest.mark.midge_only
def test_http_dir_over_https(wss):
    b, ctx = wss
    st, hdrs, body = http_request(b.port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", ssl_ctx=ctx)
    assert st == 200 and hdrs["content-type"] == "text/html; charset=utf-8" and body == PAGE
    assert http_request(b.port, b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n", ssl_ctx=ctx)[0] == 404


PAHO = r"""
import sys, threading, paho.mqtt.client as mqtt
port, ca = int(sys.argv[1]), sys.argv[2]
done = threading.Event()
got = []
def on_message(c, u, m):
    got.append(m.payload); done.set()
def on_subscribe(c, u, mid, qos):
    c.publish("wss/paho", b"secure", qos=1)
c = mqtt.Client("paho-wss", transport="websockets")
c.tls_set(ca_certs=ca)
c.on_message = on_message
c.on_subscribe = on_subscribe
c.on_connect = lambda c, u, f, rc: c.subscribe("wss/paho", 1)
c.connect("localhost", port)
c.loop_start()
ok = done.wait(10)
c.disconnect(); c.loop_stop()
print(got)
sys.exit(0 if ok else 1)
"""


def test_paho_over_wss(wss, tls_certs):
    b, _ = wss
    r = subprocess.run(["/usr/bin/python3", "-c", PAHO, str(b.port), tls_certs.ca],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == b"[b'secure']"


def test_midge_pub_and_sub_over_wss(wss, tls_certs):
    b, _ = wss
    tools = os.path.join(MIDGE_BUILD, "bin")
    url = "wss://localhost:%d/mqtt" % b.port
    sub = subprocess.Popen([os.path.join(tools, "midge_sub"), "-L", url, "--cafile", tls_certs.ca,
                            "-t", "wss/tools", "-C", "1", "-W", "10", "-d"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = b""
        while b"Subscribed" not in line:
            line = sub.stdout.readline()
            assert line, sub.stderr.read()
        r = subprocess.run([os.path.join(tools, "midge_pub"), "-L", url, "--cafile", tls_certs.ca,
                            "-t", "wss/tools", "-m", "via wss"], capture_output=True, timeout=30)
        assert r.returncode == 0, r.stderr
        out, err = sub.communicate(timeout=15)
        assert sub.returncode == 0, err
        assert b"via wss" in out.splitlines(), out
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()


@pytest.mark.midge_only
def test_plain_ws_client_on_the_wss_port_fails(wss):
    b, _ = wss
    with pytest.raises((mqtt_raw.Closed, AssertionError, TimeoutError, ConnectionError)):
        WsConn(b.port, timeout=3)


def test_wss_identity_as_username(tmp_path, tls_certs):  # noqa: F811
    """require_certificate + use_identity_as_username on a wss listener: the client
    certificate's CN is the user name, as on a plain TLS listener (mosquitto logs it as
    u'client1'); a client without a certificate does not get in."""
    c = tls_certs
    port = free_port()
    extra = ["listener %d 127.0.0.1" % port, "protocol websockets",
             "cafile %s" % c.ca, "certfile %s" % c.server_cert, "keyfile %s" % c.server_key,
             "require_certificate true", "use_identity_as_username true"]
    if IS_MOSQUITTO:
        extra = ["listener %d 127.0.0.1" % free_port()] + extra
        if os.geteuid() == 0:
            extra.append("user root")
    b = Broker(tmp_path, threads=1, extra=extra, listener=False, port=port, name="wssid")
    try:
        ctx = ssl.create_default_context(cafile=c.ca)
        ctx.load_cert_chain(c.client_cert, c.client_key)
        cl = WsMqtt(b.port, ssl_ctx=ctx)
        try:
            cl.send(mqtt_raw.connect("wss-cert"))  # no user name in the CONNECT
            assert cl.recv_raw() == b"\x20\x02\x00\x00"
            b.wait_log(r"New client connected from \S+ as wss-cert \(p2, c1, k60, u'client1'\)\.")
        finally:
            cl.close()
        bare = ssl.create_default_context(cafile=c.ca)  # no client certificate
        with pytest.raises((ssl.SSLError, ConnectionError, OSError, AssertionError,
                            mqtt_raw.Closed)):
            x = WsMqtt(b.port, ssl_ctx=bare)
            x.send(mqtt_raw.connect("wss-nocert"))
            x.recv_raw()
        assert "as wss-nocert" not in b.log()
    finally:
        b.stop()
