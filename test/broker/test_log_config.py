"""The `-v` log in mosquitto's words, and the config file in mosquitto.conf's language."""

import re
import socket
import subprocess

import pytest

from harness import (IS_MIDGE, SANITIZER_PATTERNS, Broker, broker_argv, broker_env,
                     free_port, run_broker_until_exit)
from mqtt_raw import RawClient, publish

# midge names itself in the log where mosquitto does ("midge version X starting"): by design.
NAME = "midge" if IS_MIDGE else "mosquitto"


def test_verbose_log_startup_lines(broker):
    broker.wait_log(r"%s version \S+ starting" % NAME)
    broker.wait_log(r"Config loaded from .*%s\." % re.escape(broker.conf_path.split("/")[-1]))
    broker.wait_log(r"Opening ipv4 listen socket on port %d\." % broker.port)


@pytest.mark.threaded
def test_verbose_log_connect_subscribe_publish_disconnect(broker):
    sub = RawClient(broker.port)
    sub.connect("logsub")
    sub.subscribe(["temp"])
    pub = RawClient(broker.port)
    pub.connect("logpub")
    pub.send(publish("temp", b"36.5"))
    sub.recv_publish()
    pub.disconnect()
    p = broker.port
    broker.wait_log(r"^.*New connection from 127\.0\.0\.1:\d+ on port %d\.$" % p)
    broker.wait_log(r"New client connected from 127\.0\.0\.1:\d+ as logsub \(p2, c1, k60\)\.")
    broker.wait_log(r"Received SUBSCRIBE from logsub$")
    broker.wait_log(r"Sending SUBACK to logsub$")
    broker.wait_log(r"Received PUBLISH from logpub \(d0, q0, r0, m0, 'temp', \.\.\. \(4 bytes\)\)")
    broker.wait_log(r"Sending PUBLISH to logsub \(d0, q0, r0, m0, 'temp', \.\.\. \(4 bytes\)\)")
    broker.wait_log(r"Received DISCONNECT from logpub$")
    broker.wait_log(r"Client logpub disconnected\.$")
    sub.close()


@pytest.mark.parametrize("version,tag", [(3, "p1"), (4, "p2"), (5, "p5")])
def test_verbose_log_protocol_clean_keepalive(broker, version, tag):
    c = RawClient(broker.port, version=version)
    c.connect("lv%d" % version, clean=False, keepalive=17,
              properties=[(0x11, 10)] if version == 5 else None)
    broker.wait_log(r"as lv%d \(%s, c0, k17\)\." % (version, tag))
    c.disconnect()


def test_verbose_log_abnormal_close_gives_reason(broker):
    c = RawClient(broker.port)
    c.connect("abrupt")
    c.abort()
    # mosquitto: "Client abrupt closed its connection."; any wording that names the client
    # and is not the clean "disconnected." line with nothing else
    broker.wait_log(r"Client abrupt (closed its connection|disconnected[:,]? .+|"
                    r"disconnected due to .+)")


def _can_unshare_net():
    try:
        r = subprocess.run(["unshare", "-n", "true"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=5)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _can_unshare_net(), reason="needs `unshare -n` (root) so the "
                    "lecture's all-addresses listener never meets a real network")
def test_lecture_config_verbatim_with_trailing_comments(tmp_path):
    """The lecture's file, word for word. It listens on all addresses, so broker and client
    run in a private network namespace that has only loopback."""
    port = free_port()
    conf = tmp_path / "lecture.conf"
    conf.write_text("listener %d # allow connections from other computers\n"
                    "allow_anonymous true # let anyone connect\n" % port)
    log = tmp_path / "lecture.log"
    script = (
        "ip link set lo up || exit 90\n"
        "%s -c %s -v > %s 2>&1 &\n"
        "pid=$!\n"
        "ok=1\n"
        "for i in $(seq 100); do\n"
        "  if /usr/bin/mosquitto_pub -h 127.0.0.1 -p %d -t temp -m 36.5 -q 1; then ok=0; break; fi\n"
        "  sleep 0.1\n"
        "done\n"
        "kill -TERM $pid; wait $pid; echo broker-exit=$?\n"
        "exit $ok\n") % (broker_argv(str(conf), verbose=False)[0], conf, log, port)
    r = subprocess.run(["unshare", "-n", "sh", "-c", script], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=broker_env(), timeout=60)
    out = r.stdout.decode(errors="replace")
    text = log.read_text(errors="replace")
    assert r.returncode == 0, out + text
    assert "Received PUBLISH from" in text, text
    if IS_MIDGE:
        assert "broker-exit=0" in out, out + text
        for pat in SANITIZER_PATTERNS:
            assert pat not in text, text


def test_unknown_keyword_names_file_and_line(tmp_path):
    rc, out = run_broker_until_exit(
        tmp_path, "listener %d 127.0.0.1\nallow_anonymous true\nno_such_keyword 1\n"
        % free_port())
    assert rc not in (0, None), out
    assert "no_such_keyword" in out
    assert re.search(r"exit\.conf\D{0,8}3\b", out), out


def test_bad_value_names_file_and_line(tmp_path):
    rc, out = run_broker_until_exit(
        tmp_path, "listener %d 127.0.0.1\nmax_keepalive banana\n" % free_port())
    assert rc not in (0, None), out
    assert re.search(r"exit\.conf\D{0,8}2\b", out) or "max_keepalive" in out, out


def test_port_in_use_exits_1(tmp_path):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        rc, out = run_broker_until_exit(tmp_path, "listener %d 127.0.0.1\n" % port)
    finally:
        holder.close()
    assert rc == 1, out
    assert "Error: Address already in use" in out


@pytest.mark.midge_only
def test_persistence_true_opens_the_store_in_persistence_location(tmp_path, broker_factory):
    """persistence true is supported now (it was refused with file and line before issue
    10): the file is persistence_location + persistence_file, and the start-up log names it."""
    loc = tmp_path / "state"
    loc.mkdir()
    b = broker_factory(extra=["persistence true", "persistence_location %s" % loc,
                              "persistence_file kept.db", "autosave_interval 1800",
                              "autosave_on_changes false"])
    RawClient(b.port).connect("pt")
    assert (loc / "kept.db").exists()
    assert "Loading persistence from %s/kept.db" % loc in b.log()


@pytest.mark.midge_only
def test_persistence_false_accepted(broker_factory):
    b = broker_factory(extra=["persistence false"])
    RawClient(b.port).connect("pf")


@pytest.mark.midge_only
def test_no_listener_means_loopback_only_and_says_so(tmp_path):
    port = free_port()
    b = Broker(tmp_path, threads=1, listener=False, port=port, args=["-p", str(port)])
    try:
        c = RawClient(port)
        c.connect("lo")
        c.disconnect()
        log = b.log()
        assert re.search(r"(?i)(loopback|local only)", log), log
        assert "listener" in log, log  # names the line that opens it to the network
        # not reachable on another local address, if the machine has one
        addrs = subprocess.run(["hostname", "-I"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL).stdout.decode().split()
        for a in addrs:
            if ":" in a or a.startswith("127."):
                continue
            with pytest.raises(OSError):
                socket.create_connection((a, port), timeout=1).close()
            break
    finally:
        b.stop()
