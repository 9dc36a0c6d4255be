"""MQTT 5.0 details on the wire (topic aliases both ways, the broker's DISCONNECT and Maximum
Packet Size) against a scripted fake broker, plus name lookup (IPv6, localhost fallback) and
the socket API for programs with their own event loop."""

import os
import subprocess

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import mosq, mosq_factory, cbin, spawn, fake  # noqa: F401  (fixtures)
import mqtt_raw as raw


def connack5(props=()):
    body = bytes([0, 0]) + raw.props(list(props))
    return bytes([0x20]) + raw.varint(len(body)) + body


def test_topic_alias_outbound_bytes(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "5", "connect",
               "pubalias", "al/t", "one", "1", "pubalias", "", "two", "1",
               "pubalias", "", "three", "9", "waitpub", "3000", "disconnect"])
    conn = fake.accept(5)
    conn.expect(raw.CONNECT)
    conn.send(connack5([(raw.P_TOPIC_ALIAS_MAXIMUM, 5)]))
    p = conn.expect(raw.PUBLISH)
    # topic "al/t", packet id 1, properties: topic alias 1
    assert p.raw == bytes([0x32, 15, 0, 4]) + b"al/t" + bytes([0, 1, 3, 0x23, 0, 1]) + b"one"
    p = conn.expect(raw.PUBLISH)
    # the alias alone: empty topic
    assert p.raw == bytes([0x32, 11, 0, 0, 0, 2, 3, 0x23, 0, 1]) + b"two"
    conn.send(raw.puback(1, 5) + raw.puback(2, 5))
    c.expect("waitpub rc=0")
    conn.expect(raw.DISCONNECT)
    c.finish()
    assert "pub err=-18" in c.lines  # alias 9 > the broker's maximum 5: MIDGE_ERR_PROPERTY


def test_topic_alias_against_mosquitto(mosq, cbin):
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-V", "5", "connect", "sub", "al/#", "1",
                    "pubalias", "al/t", "one", "1", "pubalias", "", "two", "1",
                    "recv", "2", "3000", "disconnect"])
    assert [ln for ln in lines if ln.startswith("msg ")] == [
        "msg topic=al/t qos=1 retain=0 dup=0 len=3 payload=one",
        "msg topic=al/t qos=1 retain=0 dup=0 len=3 payload=two"]


def test_topic_alias_inbound(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "5", "-A", "4", "connect",
               "recv", "2", "3000", "loop", "500"])
    conn = fake.accept(5)
    p = conn.expect(raw.CONNECT)
    assert bytes([3, 0x22, 0, 4]) in p.raw  # properties: Topic Alias Maximum 4
    conn.send(connack5())
    conn.send(raw.publish("in/t", b"a", version=5, properties=[(raw.P_TOPIC_ALIAS, 2)]))
    conn.send(raw.publish("", b"b", version=5, properties=[(raw.P_TOPIC_ALIAS, 2)]))
    c.expect("recv 2")
    # an alias nobody bound is a protocol error: DISCONNECT 0x94 "Topic Alias invalid"
    conn.send(raw.publish("", b"c", version=5, properties=[(raw.P_TOPIC_ALIAS, 3)]))
    d = conn.expect(raw.DISCONNECT)
    assert d.raw == bytes([0xE0, 1, 0x94])
    c.expect("on_disconnect flags=0 rc=-6")  # MIDGE_ERR_PROTOCOL
    c.finish()
    assert [ln for ln in c.lines if ln.startswith("msg ")] == [
        "msg topic=in/t qos=0 retain=0 dup=0 len=1 payload=a",
        "msg topic=in/t qos=0 retain=0 dup=0 len=1 payload=b"]


def test_server_disconnect(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "5", "-d", "connect", "loop", "2000"])
    conn = fake.accept(5)
    conn.expect(raw.CONNECT)
    conn.send(connack5())
    conn.send(raw.disconnect(5, 0x8E))  # Session taken over
    c.expect("on_disconnect flags=1 rc=142")
    c.finish()
    assert any(ln.endswith("Received DISCONNECT (142)") for ln in c.lines)


def test_server_maximum_packet_size(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "5", "connect",
               "pub", "t", "x" * 100, "0", "0", "pub", "t", "small", "0", "0", "loop", "300",
               "disconnect"])
    conn = fake.accept(5)
    conn.expect(raw.CONNECT)
    conn.send(connack5([(raw.P_MAXIMUM_PACKET_SIZE, 64)]))
    p = conn.expect(raw.PUBLISH)
    assert p.payload == b"small"  # the 100-byte one was refused, never sent
    conn.expect(raw.DISCONNECT)
    c.finish()
    assert "pub err=-20" in c.lines  # MIDGE_ERR_OVERSIZE_PACKET


def test_v5_connect_bytes(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "5", "-i", "c5", "-k", "30",
               "-x", "300", "-n", "connect", "disconnect"])
    conn = fake.accept(5)
    p = conn.expect(raw.CONNECT)
    # MQTT 5.0 3.1: name, level 5, flags 0 (clean start off), keepalive 30,
    # properties: session expiry 300, client id "c5"
    assert p.raw == (bytes([0x10, 20, 0, 4]) + b"MQTT" + bytes([5, 0, 0, 30]) +
                     bytes([5, 0x11, 0, 0, 1, 0x2C]) + bytes([0, 2]) + b"c5")
    conn.send(connack5())
    assert conn.expect(raw.DISCONNECT).raw == bytes([0xE0, 0])
    c.finish()


def test_v31_connect_bytes(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "3", "-i", "old", "connect",
               "disconnect"])
    conn = fake.accept(3)
    p = conn.expect(raw.CONNECT)
    assert p.raw == bytes([0x10, 17, 0, 6]) + b"MQIsdp" + bytes([3, 2, 0, 60, 0, 3]) + b"old"
    conn.send(bytes([0x20, 2, 0, 0]))
    conn.expect(raw.DISCONNECT)
    c.finish()


def test_ipv6_and_localhost(mosq_factory, cbin):
    import socket as so
    m = mosq_factory()
    # a second listener on ::1 (same port number is free there)
    with open(m.conf, "a") as f:
        f.write("listener %d ::1\n" % m.port)
    m.restart()
    lines, _ = run([cbin("mgtest"), "-h", "::1", "-p", str(m.port), "connect", "disconnect"])
    assert "connect rc=0" in lines
    # "localhost" may resolve to ::1 and 127.0.0.1: whichever answers
    lines, _ = run([cbin("mgtest"), "-h", "localhost", "-p", str(m.port), "connect", "disconnect"])
    assert "connect rc=0" in lines


def test_external_event_loop(mosq, cbin):
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-k", "1", "-d", "connect_async",
                    "extloop", "300", "sub", "ext/t", "1", "pub", "ext/t", "x", "1", "0",
                    "extloop", "2500", "disconnect"])
    assert "on_connect flags=0 rc=0" in lines
    assert "msg topic=ext/t qos=1 retain=0 dup=0 len=1 payload=x" in lines
    assert "on_publish mid=2 rc=0" in lines
    assert any(ln.endswith("sending PINGREQ") for ln in lines)  # loop_misc keeps the keepalive
    assert any(ln.endswith("received PINGRESP") for ln in lines)


def test_will_and_credentials_bytes(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-i", "w", "-u", "bob", "-P", "pw",
               "will", "w/t", "bye", "1", "1", "connect", "disconnect"])
    conn = fake.accept()
    p = conn.expect(raw.CONNECT)
    # 3.1.1 3.1.2.3: user name 0x80, password 0x40, will retain 0x20, will QoS 1 0x08,
    # will 0x04, clean session 0x02; payload: id, will topic, will message, user, password
    body = (bytes([0, 4]) + b"MQTT" + bytes([4, 0xEE, 0, 60]) + bytes([0, 1]) + b"w" +
            bytes([0, 3]) + b"w/t" + bytes([0, 3]) + b"bye" + bytes([0, 3]) + b"bob" +
            bytes([0, 2]) + b"pw")
    assert p.raw == bytes([0x10, len(body)]) + body
    conn.send(bytes([0x20, 2, 0, 0]))
    conn.expect(raw.DISCONNECT)
    c.finish()


def test_connect_timeout_without_connack(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-T", "700", "connect"])
    conn = fake.accept()
    conn.expect(raw.CONNECT)
    c.expect("connect rc=-9", timeout=5)  # MIDGE_ERR_TIMEOUT
    c.finish()
    assert "on_connect_fail err=-9" in c.lines


@pytest.mark.parametrize("version,refused", [("4", "5"), ("5", "135")])
def test_username_password_against_mosquitto(mosq_factory, cbin, tmp_path, version, refused):
    pw = tmp_path / "passwd"
    pw.write_text("")
    subprocess.run(["/usr/bin/mosquitto_passwd", "-b", str(pw), "alice", "secret"], check=True)
    # mosquitto started as root drops to user "mosquitto", who cannot read pytest's tmp dir
    user = "user root\n" if os.geteuid() == 0 else ""
    m = mosq_factory(user + "allow_anonymous false\npassword_file %s\n" % pw)
    lines, _ = run([cbin("mgtest"), "-p", str(m.port), "-V", version, "-u", "alice", "-P",
                    "secret", "connect", "disconnect"])
    assert "connect rc=0" in lines
    lines, _ = run([cbin("mgtest"), "-p", str(m.port), "-V", version, "-u", "alice", "-P",
                    "wrong", "connect"])
    # mosquitto 2.0 answers a wrong password with "not authorised" (5 / 0x87)
    assert "connect rc=%s" % refused in lines


def test_v5_reconnect_clean_start_first_only(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", "5", "-i", "fo", "-x", "300",
               "-C", "1", "connect", "forever"])
    conn = fake.accept(5)
    p = conn.expect(raw.CONNECT)
    assert p.raw[9] == 0x02          # connect flags: Clean Start on the user's connect
    conn.send(connack5())
    conn.sock.close()
    c.expect("on_disconnect flags=0 rc=-5")
    conn = fake.accept(5)
    p = conn.expect(raw.CONNECT)
    assert p.raw[9] == 0x00          # the loop's reconnect resumes the session
    conn.send(bytes([0x20, 3, 1, 0, 0]))  # session present
    c.expect("on_connect flags=1 rc=0")
    conn.send(raw.publish("t", b"x", version=5))
    c.expect("forever rc=0")
    c.finish()


@pytest.mark.parametrize("version", [4, 5])
def test_subscribe_and_unsubscribe_bytes(fake, cbin, spawn, version):
    """The SUBSCRIBE and UNSUBSCRIBE payloads, byte for byte (3.1.1 3.8.3 / 3.10.3, 5.0 3.8.3.1
    options: QoS bits 0-1, No Local bit 2, Retain As Published bit 3, Retain Handling bits
    4-5), for one filter and for two in one packet."""
    opts = "0x2d" if version == 5 else "1"  # 5.0: QoS 1, No Local, Retain As Published, RH 2
    opt2 = "0x12" if version == 5 else "2"  # 5.0: QoS 2, RH 1
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", str(version), "connect",
               "subopt", "a/b", opts, "sub2", "x", opt2, "y/+/#", "0",
               "unsub", "a/b", "unsub2", "x", "y/+/#", "loop", "300", "disconnect"])
    conn = fake.accept(version)
    conn.expect(raw.CONNECT)
    conn.send(connack5() if version == 5 else bytes([0x20, 2, 0, 0]))
    no_props = b"\x00" if version == 5 else b""
    want = [
        (0x82, b"\x00\x01" + no_props + b"\x00\x03a/b" + bytes([int(opts, 0)])),
        (0x82, b"\x00\x02" + no_props + b"\x00\x01x" + bytes([int(opt2, 0)]) +
         b"\x00\x05y/+/#\x00"),
        (0xA2, b"\x00\x03" + no_props + b"\x00\x03a/b"),
        (0xA2, b"\x00\x04" + no_props + b"\x00\x01x\x00\x05y/+/#"),
    ]
    for first, body in want:
        p = conn.expect(raw.SUBSCRIBE if first == 0x82 else raw.UNSUBSCRIBE)
        assert p.raw == bytes([first, len(body)]) + body
    conn.expect(raw.DISCONNECT)
    c.finish()
    assert "subopt rc=1" in c.lines and "sub2 rc=2" in c.lines
    assert "unsub rc=3" in c.lines and "unsub2 rc=4" in c.lines
