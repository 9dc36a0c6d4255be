"""Interop with Debian's mosquitto_pub / mosquitto_sub: the lecture's commands, unchanged."""

import os

import pytest

SUB = "/usr/bin/mosquitto_sub"
PUB = "/usr/bin/mosquitto_pub"


def sub_argv(port, *extra):
    # stdbuf: mosquitto_sub's stdout is a file here; line-buffer it so tests see lines now
    return ["stdbuf", "-oL", SUB, "-h", "127.0.0.1", "-p", str(port)] + list(extra)


def pub(port, *extra, timeout=10):
    import subprocess
    r = subprocess.run([PUB, "-h", "127.0.0.1", "-p", str(port)] + list(extra),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, "mosquitto_pub failed (%d): %s" % (r.returncode, out)
    return out


def wait_subscribed(p):
    p.wait_out(r"received SUBACK")


@pytest.mark.threaded
def test_lecture_two_subscribers_one_publisher(broker, procs):
    """The lecture: two `mosquitto_sub -d -t temp`, one `mosquitto_pub -t temp -m 36.5`."""
    s1 = procs(sub_argv(broker.port, "-d", "-t", "temp"))
    s2 = procs(sub_argv(broker.port, "-d", "-t", "temp"))
    wait_subscribed(s1)
    wait_subscribed(s2)
    pub(broker.port, "-t", "temp", "-m", "36.5")
    for s in (s1, s2):
        s.wait_out(r"received PUBLISH \(d0, q0, r0, m0, 'temp', \.\.\. \(4 bytes\)\)")
        s.wait_out(r"^36\.5$")
        out = s.out()
        assert "received CONNACK (0)" in out
        assert out.count("36.5") == 1


@pytest.mark.parametrize("version", ["31", "311", "5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pub_sub_versions_and_qos(broker, procs, version, qos):
    """mosquitto_pub/sub with -V 31/311/5 and QoS 0/1/2: the message arrives at
    min(pub QoS, sub QoS) = QoS as published."""
    s = procs(sub_argv(broker.port, "-d", "-V", version, "-q", str(qos), "-t", "v/t", "-C", "1"))
    wait_subscribed(s)
    out = pub(broker.port, "-d", "-V", version, "-q", str(qos), "-t", "v/t", "-m", "hello")
    if qos == 1:
        assert "received PUBACK" in out
    if qos == 2:
        assert "received PUBREC" in out and "received PUBCOMP" in out
    assert s.wait(10) == 0
    text = s.out()
    assert "hello" in text.splitlines()
    assert "received PUBLISH (d0, q%d, r0, m" % qos in text


def test_retained_message_delivered_to_late_subscriber(broker, procs):
    pub(broker.port, "-t", "r/t", "-m", "kept", "-r", "-q", "1")
    s = procs(sub_argv(broker.port, "-d", "-t", "r/t", "-C", "1"))
    assert s.wait(10) == 0
    out = s.out()
    assert "kept" in out.splitlines()
    assert "r1," in out  # retain flag set on delivery of a stored retained message
    # an empty retained payload deletes it
    pub(broker.port, "-t", "r/t", "-n", "-r")
    s2 = procs(sub_argv(broker.port, "-t", "r/t", "-W", "1"))
    s2.wait(10)
    assert "kept" not in s2.out()


def test_will_sent_on_abnormal_disconnect(broker, procs):
    """--will-*: the will is published when the client dies without DISCONNECT."""
    w = procs(sub_argv(broker.port, "-d", "-t", "will/t", "-C", "1"))
    wait_subscribed(w)
    victim = procs(sub_argv(broker.port, "-d", "-t", "nothing", "-i", "victim",
                            "--will-topic", "will/t", "--will-payload", "gone",
                            "--will-qos", "1"))
    wait_subscribed(victim)
    victim.p.kill()  # SIGKILL: no DISCONNECT
    assert w.wait(10) == 0
    assert "gone" in w.out().splitlines()


def test_will_not_sent_on_clean_disconnect(broker, procs):
    """mosquitto_pub ends with DISCONNECT: its will is discarded. The same client id then
    publishes a sentinel, which reaches the subscriber after the will had there been one:
    the subscriber's one message (-C 1) is the sentinel, and it exits 0."""
    w = procs(sub_argv(broker.port, "-d", "-t", "will2/t", "-C", "1"))
    wait_subscribed(w)
    pub(broker.port, "-i", "willer", "-t", "other", "-m", "x", "--will-topic", "will2/t",
        "--will-payload", "gone")
    pub(broker.port, "-i", "willer", "-t", "will2/t", "-m", "sentinel", "-q", "1")
    assert w.wait(10) == 0, w.out()
    payloads = [ln for ln in w.out().splitlines()
                if not ln.startswith(("Client ", "Subscribed "))]
    assert payloads == ["sentinel"], w.out()


@pytest.mark.parametrize("version", ["311", "5"])
def test_persistent_session_offline_queueing(broker, procs, version):
    """-c: a persistent session keeps its subscription and queues QoS 1 messages while the
    client is offline; they arrive when it reconnects."""
    extra = ["-x", "600"] if version == "5" else []
    s = procs(sub_argv(broker.port, "-d", "-V", version, "-c", "-i", "pers-" + version,
                       "-q", "1", "-t", "q/t", *extra))
    wait_subscribed(s)
    s.kill()
    for i in range(3):
        pub(broker.port, "-V", version, "-q", "1", "-t", "q/t", "-m", "m%d" % i)
    s2 = procs(sub_argv(broker.port, "-d", "-V", version, "-c", "-i", "pers-" + version,
                        "-q", "1", "-t", "q/t", "-C", "3", *extra))
    assert s2.wait(10) == 0
    lines = s2.out().splitlines()
    assert [l for l in lines if l in ("m0", "m1", "m2")] == ["m0", "m1", "m2"]


def test_binary_file_with_mosquitto_tools(broker, procs, tmp_path):
    """mosquitto_pub -f a 300 KB binary file; mosquitto_sub -N -C 1 writes it back
    byte-identical."""
    data = os.urandom(300 * 1024)
    src = tmp_path / "in.jpg"
    src.write_bytes(data)
    s = procs(sub_argv(broker.port, "-d", "-N", "-C", "1", "-t", "jpeg", "-q", "1"))
    wait_subscribed(s)
    pub(broker.port, "-t", "jpeg", "-q", "1", "-f", str(src))
    assert s.wait(10) == 0
    out = open(s.path, "rb").read()
    assert data in out


def test_v5_user_properties_with_mosquitto_tools(broker, procs):
    """mosquitto_pub -V 5 -D publish user-property / content-type; mosquitto_sub -F shows
    them on the receiving side."""
    s = procs(sub_argv(broker.port, "-V", "5", "-d", "-C", "1", "-t", "props/t",
                       "-F", "%t|%p|%P|%C"))
    wait_subscribed(s)
    pub(broker.port, "-V", "5", "-t", "props/t", "-m", "body",
        "-D", "publish", "user-property", "room", "kitchen",
        "-D", "publish", "content-type", "text/plain")
    assert s.wait(10) == 0
    assert "props/t|body|room:kitchen|text/plain" in s.out().splitlines()


def test_lines_from_stdin_and_wildcard_verbose(broker, procs):
    """mosquitto_pub -l (one message per line) and mosquitto_sub -v -t '#'."""
    import subprocess
    s = procs(sub_argv(broker.port, "-d", "-v", "-t", "#", "-C", "3"))
    wait_subscribed(s)
    r = subprocess.run([PUB, "-h", "127.0.0.1", "-p", str(broker.port), "-t", "room/temp",
                        "-l"], input=b"21\n22\n23\n", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    assert r.returncode == 0, r.stdout
    assert s.wait(10) == 0
    lines = s.out().splitlines()
    assert [l for l in lines if l.startswith("room/temp ")] == ["room/temp 21", "room/temp 22",
                                                                 "room/temp 23"]
