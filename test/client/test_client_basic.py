"""libmidge against Debian's mosquitto: connect, QoS 0/1/2 both ways, retained, will,
5.0 properties, a 10 MB payload, and the -d lines libmosquitto writes."""

import os
import re
import subprocess

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import mosq, mosq_factory, cbin, spawn, fake  # noqa: F401  (fixtures)

SUB = ["stdbuf", "-oL", "/usr/bin/mosquitto_sub"]  # line-buffered through a pipe
PUB = "/usr/bin/mosquitto_pub"


def strip_log(lines):
    """log lines without their timestamps"""
    return [re.sub(r"^log: \[\d+\] ", "log: ", ln) for ln in lines if ln.startswith("log: ")]


def test_debug_lines_are_libmosquittos(mosq, cbin):
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-d", "connect", "sub", "temp", "2",
                    "pub", "temp", "23.5", "1", "0", "recv", "1", "5000", "waitpub", "3000",
                    "pub", "temp", "abcd", "2", "0", "recv", "2", "5000", "waitpub", "3000",
                    "loop", "300", "disconnect"])
    log = strip_log(lines)
    # Each of these is what mosquitto_sub -d / mosquitto_pub -d print, word for word.
    for want in [
        "log: Client (null) sending CONNECT",
        "log: Client (null) received CONNACK (0)",
        "log: Client (null) sending SUBSCRIBE (Mid: 1, Topic: temp, QoS: 2, Options: 0x00)",
        "log: Client (null) received SUBACK",
        "log: Client (null) sending PUBLISH (d0, q1, r0, m2, 'temp', ... (4 bytes))",
        "log: Client (null) received PUBACK (Mid: 2, RC:0)",
        "log: Client (null) received PUBLISH (d0, q1, r0, m1, 'temp', ... (4 bytes))",
        "log: Client (null) sending PUBACK (m1, rc0)",
        "log: Client (null) sending PUBLISH (d0, q2, r0, m3, 'temp', ... (4 bytes))",
        "log: Client (null) received PUBREC (Mid: 3)",
        "log: Client (null) sending PUBREL (m3)",
        "log: Client (null) received PUBCOMP (Mid: 3, RC:0)",
        "log: Client (null) received PUBLISH (d0, q2, r0, m2, 'temp', ... (4 bytes))",
        "log: Client (null) sending PUBREC (m2, rc0)",
        "log: Client (null) received PUBREL (Mid: 2)",
        "log: Client (null) sending PUBCOMP (m2)",
        "log: Client (null) sending DISCONNECT",
    ]:
        assert want in log, "missing %r in\n%s" % (want, "\n".join(log))
    assert log[0] == "log: Client (null) sending CONNECT"
    assert log[-1] == "log: Client (null) sending DISCONNECT"
    assert "on_connect flags=0 rc=0" in lines
    assert "connect rc=0" in lines
    assert "on_subscribe mid=1 n=1 2" in lines
    assert "on_publish mid=2 rc=0" in lines and "on_publish mid=3 rc=0" in lines
    assert "on_disconnect flags=0 rc=0" in lines


def test_debug_lines_match_mosquitto_pub(mosq, cbin):
    """The same publish through mosquitto_pub -d and through libmidge gives the same lines."""
    r = subprocess.run([PUB, "-d", "-p", str(mosq.port), "-t", "temp", "-m", "23.5", "-q", "1",
                        "-i", "same-id"], capture_output=True, text=True, timeout=10)
    theirs = [ln for ln in r.stdout.splitlines() if ln.startswith("Client")]
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-i", "same-id", "-d", "connect",
                    "pub", "temp", "23.5", "1", "0", "waitpub", "3000", "disconnect"])
    ours = [ln[len("log: "):] for ln in strip_log(lines)]
    assert ours == theirs


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_publish_to_mosquitto_sub(mosq, cbin, spawn, version, qos):
    sub = spawn(SUB + ["-p", str(mosq.port), "-t", "room/temp", "-q", "2", "-C", "2", "-v",
                 "-F", "%t %q %p", "-d"])
    sub.expect("Subscribed")
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-V", str(version), "connect",
                    "pub", "room/temp", "23", str(qos), "0", "pub", "room/temp", "24", str(qos), "0",
                    "waitpub", "5000", "disconnect"])
    assert "waitpub rc=0" in lines
    assert len([ln for ln in lines if ln.startswith("on_publish")]) == 2
    sub.expect("room/temp %d 23" % qos)
    sub.expect("room/temp %d 24" % qos)
    assert sub.finish()[0] == 0


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_receive_from_mosquitto_pub(mosq, cbin, spawn, version, qos):
    c = spawn([cbin("mgtest"), "-p", str(mosq.port), "-V", str(version), "connect", "sub",
               "room/#", str(qos), "recv", "2", "10000", "disconnect"])
    c.expect("on_subscribe")
    for m in ("hello", "world"):
        subprocess.run([PUB, "-p", str(mosq.port), "-t", "room/temp", "-m", m, "-q", str(qos)],
                       check=True, timeout=10)
    c.expect("payload=hello")
    c.expect("payload=world")
    c.expect("recv 2")
    assert c.finish()[0] == 0
    msgs = [ln for ln in c.lines if ln.startswith("msg ")]
    assert msgs == ["msg topic=room/temp qos=%d retain=0 dup=0 len=5 payload=hello" % qos,
                    "msg topic=room/temp qos=%d retain=0 dup=0 len=5 payload=world" % qos]


def test_retained(mosq, cbin):
    run([cbin("mgtest"), "-p", str(mosq.port), "connect", "pub", "ret/a", "kept", "1", "1",
         "waitpub", "3000", "disconnect"])
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "connect", "sub", "ret/#", "1",
                    "recv", "1", "5000", "disconnect"])
    assert "msg topic=ret/a qos=1 retain=1 dup=0 len=4 payload=kept" in lines
    # an empty retained message clears it
    run([cbin("mgtest"), "-p", str(mosq.port), "connect", "pub", "ret/a", "", "0", "1",
         "waitpub", "3000", "disconnect"])
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "connect", "sub", "ret/#", "1",
                    "recv", "1", "700", "disconnect"])
    assert "recv 0" in lines


@pytest.mark.parametrize("version", [4, 5])
def test_will(mosq, cbin, spawn, version):
    sub = spawn(SUB + ["-p", str(mosq.port), "-t", "will/t", "-C", "1", "-v", "-q", "1", "-d"])
    sub.expect("received SUBACK")
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-V", str(version), "will", "will/t",
                    "gone", "1", "0", "connect", "abort", "loop", "300"])
    assert "will rc=0" in lines and "connect rc=0" in lines
    sub.expect("will/t gone")
    assert sub.finish()[0] == 0


def test_will_not_sent_after_disconnect(mosq, cbin, spawn):
    """midge_disconnect sends DISCONNECT: the broker discards the will. The same client id
    then publishes a sentinel, which the subscriber gets after the will had there been one:
    its one message (-C 1) is the sentinel, and it exits 0."""
    sub = spawn(SUB + ["-p", str(mosq.port), "-t", "will/t", "-C", "1", "-v", "-d"])
    sub.expect("received SUBACK")
    run([cbin("mgtest"), "-p", str(mosq.port), "-i", "willer", "will", "will/t", "gone", "1",
         "0", "connect", "disconnect"])
    run([cbin("mgtest"), "-p", str(mosq.port), "-i", "willer", "connect", "pub", "will/t",
         "sentinel", "1", "0", "waitpub", "3000", "disconnect"])
    sub.expect("will/t sentinel")
    rc, _ = sub.finish(5)
    assert rc == 0
    assert not any("gone" in ln for ln in sub.lines), sub.lines


def test_v5_properties_round_trip(mosq, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(mosq.port), "-V", "5", "connect", "sub", "p/t", "1",
               "recv", "1", "10000", "disconnect"])
    c.expect("on_subscribe")
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-V", "5", "connect",
                    "pubprops", "p/t", "hi", "1", "waitpub", "3000", "disconnect"])
    line = c.expect("msg ")
    assert line == ("msg topic=p/t qos=1 retain=0 dup=0 len=2 payload=hi ct=text/plain "
                    "rt=resp/t cd=corr-01 exp=60 pf=1 user:a=1 user:b=2"), line
    assert c.finish()[0] == 0


def test_v5_properties_seen_by_mosquitto_sub(mosq, cbin, spawn):
    sub = spawn(SUB + ["-p", str(mosq.port), "-V", "5", "-t", "p/t", "-C", "1", "-F",
                 "%t %p ct=%C rt=%R cd=%D exp=%E user=%P", "-d"])
    sub.expect("received SUBACK")
    run([cbin("mgtest"), "-p", str(mosq.port), "-V", "5", "connect", "pubprops", "p/t", "hi",
         "1", "waitpub", "3000", "disconnect"])
    line = sub.expect(lambda ln: ln.startswith("p/t "))  # not a -d line
    assert "p/t hi ct=text/plain rt=resp/t cd=corr-01" in line, line
    assert re.search(r"exp=(60|59)\b", line), line
    assert "a:1" in line and "b:2" in line, line
    sub.finish()


def test_v5_assigned_client_id(mosq, cbin):
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-V", "5", "-d", "connect", "disconnect"])
    assert any(ln.startswith("on_connect flags=0 rc=0") and "assigned" in ln for ln in lines)
    log = strip_log(lines)
    assert log[0] == "log: Client (null) sending CONNECT"
    # like libmosquitto, the lines name the id the broker assigned once it is known
    assert re.match(r"log: Client auto-[0-9A-F-]+ received CONNACK \(0\)", log[1]), log[1]


def test_v5_no_local(mosq, cbin):
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-V", "5", "connect",
                    "subopt", "nl/t", str(1 | 0x04), "loop", "300",
                    "pub", "nl/t", "mine", "1", "0", "waitpub", "3000", "recv", "1", "700",
                    "disconnect"])
    assert "recv 0" in lines


@pytest.mark.parametrize("qos", [0, 1])
def test_10mb_payload(mosq, cbin, spawn, qos):
    size = 10 * 1024 * 1024
    c = spawn([cbin("mgtest"), "-p", str(mosq.port), "connect", "sub", "big", "1",
               "recv", "1", "30000", "disconnect"])
    c.expect("on_subscribe")
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "connect", "pubbig", "big", str(size),
                    str(qos), "waitpub", "30000", "disconnect"], timeout=60)
    assert "waitpub rc=0" in lines
    line = c.expect("msg ", timeout=30)
    assert line == "msg topic=big qos=%d retain=0 dup=0 len=%d pattern_errors=0" % (qos, size)
    assert c.finish()[0] == 0


def test_10mb_from_mosquitto_pub(mosq, cbin, spawn, tmp_path):
    size = 10 * 1024 * 1024
    f = tmp_path / "big.bin"
    f.write_bytes(bytes((i * 7) % 251 for i in range(251)) * (size // 251) +
                  bytes((i * 7) % 251 for i in range(size % 251)))
    c = spawn([cbin("mgtest"), "-p", str(mosq.port), "connect", "sub", "big", "2",
               "recv", "1", "30000", "disconnect"])
    c.expect("on_subscribe")
    subprocess.run([PUB, "-p", str(mosq.port), "-t", "big", "-f", str(f), "-q", "2"], check=True,
                   timeout=30)
    line = c.expect("msg ", timeout=30)
    assert line == "msg topic=big qos=2 retain=0 dup=0 len=%d pattern_errors=0" % size
    assert c.finish()[0] == 0


def test_connack_refused(mosq_factory, cbin):
    m = mosq_factory("allow_anonymous false\n")
    lines, _ = run([cbin("mgtest"), "-p", str(m.port), "-d", "connect"])
    assert "connect rc=5" in lines                      # 3.1.1: not authorised
    assert "on_connect flags=0 rc=5" in lines
    assert not any(ln.startswith("on_disconnect") for ln in lines)
    lines, _ = run([cbin("mgtest"), "-p", str(m.port), "-V", "5", "connect"])
    assert "connect rc=135" in lines                    # 5.0: 0x87 Not authorized


def test_connect_nothing_listening(cbin):
    from client_helpers import free_port
    lines, _ = run([cbin("mgtest"), "-p", str(free_port()), "connect", "connect_async",
                    "loop", "300"])
    assert "connect rc=-10" in lines                    # MIDGE_ERR_ERRNO, errno ECONNREFUSED
    assert "on_connect_fail err=-10" in lines           # the async attempt, reported by the loop


def test_unsubscribe(mosq, cbin):
    lines, _ = run([cbin("mgtest"), "-p", str(mosq.port), "-V", "5", "connect", "sub", "u/t", "0",
                    "loop", "200", "unsub", "u/t", "loop", "200", "pub", "u/t", "x", "0", "0",
                    "recv", "1", "500", "disconnect"])
    assert any(ln.startswith("on_unsubscribe mid=2 n=1 0") for ln in lines), lines
    assert "recv 0" in lines
