"""The broker as a process: command line, listeners, signals, $SYS, more -v log lines."""

import os
import re
import signal
import socket
import time

import pytest

import mqtt_raw as m
from harness import IS_MIDGE, Broker, assert_nothing_before_ping, free_port

NAME = "midge" if IS_MIDGE else "mosquitto"
# As root, mosquitto drops to user "mosquitto", which cannot write into pytest's 0700
# tmp_path: tests that make the broker write files keep it root.
AS_ROOT = ["user root"] if os.geteuid() == 0 else []


def _has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sk:
            sk.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_two_listeners_ipv4_and_ipv6(broker_factory):
    """Several `listener` lines, IPv4 and IPv6; a message crosses from one to the other."""
    p6 = free_port()
    b = broker_factory(extra=["listener %d ::1" % p6])
    v6 = m.RawClient(p6, host="::1")
    v4 = m.RawClient(b.port)
    try:
        v6.connect("six")
        v6.subscribe([("cross/t", 1)])
        v4.connect("four")
        v4.publish("cross/t", b"46", qos=1)
        assert v6.recv_publish().payload == b"46"
    finally:
        v6.close()
        v4.close()
    b.wait_log(r"Opening ipv6 listen socket on port %d\." % p6)


def test_old_port_and_bind_address_keywords(tmp_path):
    """`port` and `bind_address`, still found in many files, still work."""
    port = free_port()
    b = Broker(tmp_path, listener=False, port=port,
               extra=["port %d" % port, "bind_address 127.0.0.1"])
    try:
        c = m.RawClient(port)
        c.connect("old")
        c.disconnect()
    finally:
        b.stop()


def test_dash_p_sets_port(tmp_path):
    """`-p PORT` on the command line, as mosquitto."""
    port = free_port()
    b = Broker(tmp_path, listener=False, port=port, args=["-p", str(port)])
    try:
        c = m.RawClient(port)
        c.connect("dashp")
        c.disconnect()
    finally:
        b.stop()


def test_sigint_stops_cleanly(broker_factory):
    b = broker_factory()
    c = m.RawClient(b.port)
    c.connect("sigint")
    rc = b.stop(sig=signal.SIGINT)
    assert rc == 0
    c.close()


@pytest.mark.threaded
def test_sighup_keeps_running(broker_factory):
    """SIGHUP reloads; the broker keeps serving its clients."""
    b = broker_factory()
    c = m.RawClient(b.port)
    c.connect("hup")
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"(Reloaded configuration|Reloading config)")  # the reload is done
    assert b.alive()
    c.send(m.pingreq())
    assert c.recv().raw == b"\xd0\x00"
    c2 = m.RawClient(b.port)
    c2.connect("hup2")
    c2.close()
    c.close()


def test_log_dest_file(broker_factory, tmp_path):
    path = tmp_path / "broker-file.log"
    b = broker_factory(extra=AS_ROOT + ["log_dest file %s" % path, "log_type all"])
    c = m.RawClient(b.port)
    c.connect("tofile")
    c.disconnect()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists() and "tofile" in path.read_text(errors="replace"):
            break
        time.sleep(0.1)
    assert "New client connected" in path.read_text(errors="replace")


def test_pid_file(broker_factory, tmp_path):
    path = tmp_path / "broker.pid"
    b = broker_factory(extra=AS_ROOT + ["pid_file %s" % path])
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert int(path.read_text().strip()) == b.pid


def test_include_dir(broker_factory, tmp_path):
    """`include_dir`: every .conf file in it is read (here: a second listener)."""
    d = tmp_path / "conf.d"
    d.mkdir()
    p2 = free_port()
    (d / "extra.conf").write_text("listener %d 127.0.0.1\n" % p2)
    broker_factory(extra=["include_dir %s" % d])
    c = m.RawClient(p2)
    c.connect("incl")
    c.disconnect()


def test_verbose_log_will_and_ping_lines(broker):
    c = m.RawClient(broker.port)
    c.connect("wl", will=dict(topic="w/t", payload=b"abc", qos=1))
    c.send(m.pingreq())
    c.expect(m.PINGRESP)
    c.disconnect()
    d = m.RawClient(broker.port)
    d.connect("nw")
    d.disconnect()
    broker.wait_log(r"Will message specified \(3 bytes\) \(r0, q1\)\.")
    broker.wait_log(r"w/t")
    broker.wait_log(r"No will message specified\.")
    broker.wait_log(r"Sending CONNACK to wl \(0, 0\)")
    broker.wait_log(r"Received PINGREQ from wl")
    broker.wait_log(r"Sending PINGRESP to wl")


def test_verbose_log_qos1_lines(broker):
    s = m.RawClient(broker.port)
    s.connect("lq-s")
    s.subscribe([("lq/t", 1)])
    p = m.RawClient(broker.port)
    p.connect("lq-p")
    p.publish("lq/t", b"12345", qos=1, pid=9)
    s.recv_publish()
    broker.wait_log(r"Received PUBLISH from lq-p \(d0, q1, r0, m9, 'lq/t', \.\.\. \(5 bytes\)\)")
    broker.wait_log(r"Sending PUBACK to lq-p \(m9, rc0\)")
    broker.wait_log(r"Sending PUBLISH to lq-s \(d0, q1, r0, m\d+, 'lq/t', \.\.\. \(5 bytes\)\)")
    broker.wait_log(r"Received PUBACK from lq-s \(Mid: \d+, RC:0\)")
    s.close()
    p.close()


@pytest.mark.threaded
def test_sys_broker_version_and_counters(broker_factory):
    """$SYS/broker/... as mosquitto names them, published every sys_interval seconds."""
    b = broker_factory(extra=["sys_interval 1"])
    c = m.RawClient(b.port)
    c.connect("sys")
    c.subscribe([("$SYS/broker/version", 0), ("$SYS/broker/uptime", 0),
                 ("$SYS/broker/clients/connected", 0),
                 ("$SYS/broker/messages/received", 0),
                 ("$SYS/broker/subscriptions/count", 0)])
    seen = {}
    deadline = time.monotonic() + 2.5  # at least two sys_interval periods: fresh values
    while time.monotonic() < deadline:
        try:
            p = c.recv_publish(timeout=0.5)
        except TimeoutError:
            continue
        seen[p.topic] = p.payload.decode()
    assert re.match(r"%s version \S+" % NAME, seen.get("$SYS/broker/version", "")), seen
    assert re.match(r"\d+ seconds", seen.get("$SYS/broker/uptime", "")), seen
    assert int(seen.get("$SYS/broker/clients/connected", "0")) >= 1, seen
    assert "$SYS/broker/messages/received" in seen, seen
    assert int(seen.get("$SYS/broker/subscriptions/count", "0")) >= 5, seen
    c.close()


def test_client_cannot_publish_to_sys(raw):
    """Clients publishing to $SYS/... do not reach $SYS subscribers (mosquitto drops them)."""
    s = raw("sysw")
    s.subscribe([("$SYS/fake/#", 0)])
    p = raw("sysp")
    p.publish("$SYS/fake/x", b"spoof", qos=1)
    assert_nothing_before_ping(p, s)
