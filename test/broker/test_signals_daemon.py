"""The broker as a Unix process: SIGHUP (reopen the log file, reload settings), `-d` (run in
the background with a pid file), SIGINT / SIGTERM (clean stop, what connected clients see).

Issue 3: "SIGINT and SIGTERM stop cleanly; SIGHUP reopens log files and reloads what can be
reloaded" and `-d` "run in the background", as mosquitto(8) describes them.
"""

import glob
import os
import re
import signal
import subprocess
import time

import pytest

import mqtt_raw as m
from harness import (IS_MIDGE, assert_broker_serves, assert_nothing_before_ping, broker_argv,
                     broker_env, free_port)

# As root, mosquitto drops to user "mosquitto", which cannot write into pytest's 0700
# tmp_path: tests that make the broker write files keep it root.
AS_ROOT = ["user root"] if os.geteuid() == 0 else []


def _wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _server_keep_alive(port):
    c = m.RawClient(port, version=5)
    try:
        ack = c.connect("hup-ka-probe", version=5, keepalive=100)
        return ack.props.get(m.P_SERVER_KEEP_ALIVE)
    finally:
        c.close()


# ---------------------------------------------------------------- SIGHUP

def test_sighup_reopens_log_file(broker_factory, tmp_path):
    """mosquitto.conf(5) log_dest file: "the file will be closed and reopened when the
    broker receives a HUP signal" (log rotation): after a rename and SIGHUP, new lines go
    to a fresh file at the configured path, none to the renamed one."""
    path = tmp_path / "rot.log"
    b = broker_factory(extra=AS_ROOT + ["log_dest file %s" % path, "log_type all"])
    c = m.RawClient(b.port)
    c.connect("before-hup")
    _wait_for(lambda: "before-hup" in _read(path), what="first line in the log file")
    old = tmp_path / "rot.log.1"
    os.rename(path, old)
    b.proc.send_signal(signal.SIGHUP)
    _wait_for(lambda: path.exists(), what="the log file reopened at its path")
    d = m.RawClient(b.port)
    d.connect("after-hup")
    _wait_for(lambda: "after-hup" in _read(path), what="new lines in the reopened file")
    assert "after-hup" not in _read(old)
    # the connection made before the reload is untouched
    c.send(m.pingreq())
    c.expect(m.PINGRESP)
    c.close()
    d.close()


@pytest.mark.threaded
@pytest.mark.mosquitto_xfail("documented 'Reloaded on reload signal' but 2.0.11 keeps the old "
                             "max_keepalive for new connections")
def test_sighup_reloads_max_keepalive_existing_clients_stay(broker_factory):
    """mosquitto.conf(5) max_keepalive "Reloaded on reload signal": a 5.0 CONNECT after
    SIGHUP gets the new Server Keep Alive [MQTT-3.2.2-21]; a client connected before keeps
    its connection."""
    b = broker_factory(extra=AS_ROOT + ["max_keepalive 60"])
    assert _server_keep_alive(b.port) == 60
    old = m.RawClient(b.port, version=5)
    old.connect("hup-old", version=5, keepalive=50)
    b.rewrite_conf(AS_ROOT + ["max_keepalive 30"])
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    ka = None
    while time.monotonic() < deadline:
        ka = _server_keep_alive(b.port)
        if ka == 30:
            break
        time.sleep(0.1)
    assert ka == 30, "server keep alive after SIGHUP: %r" % ka
    old.send(m.pingreq())
    old.expect(m.PINGRESP)
    old.close()


def test_sighup_reloads_allow_anonymous(broker_factory):
    """mosquitto.conf(5) allow_anonymous "Reloaded on reload signal": after the file says
    false and SIGHUP, an anonymous 3.1.1 CONNECT is refused with return code 5 (not
    authorized) [MQTT-3.2.2-5]."""
    b = broker_factory(extra=AS_ROOT)
    c = m.RawClient(b.port)
    c.connect("anon-before")
    c.close()
    b.rewrite_conf(AS_ROOT + ["allow_anonymous false"])
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    rc = None
    while time.monotonic() < deadline:
        c = m.RawClient(b.port)
        try:
            rc = c.connect("anon-after", expect_rc=None).reason
        except (m.Closed, TimeoutError):
            rc = None
        finally:
            c.close()
        if rc == 5:
            break
        time.sleep(0.1)
    assert rc == 5, "CONNACK return code after SIGHUP: %r" % rc


@pytest.mark.mosquitto_xfail("documented 'Reloaded on reload signal' but 2.0.11 still queues "
                             "beyond the reloaded max_queued_messages")
def test_sighup_reloads_max_queued_messages(broker_factory):
    """mosquitto.conf(5) max_queued_messages "Reloaded on reload signal": after SIGHUP an
    offline session's queue is bounded by the new value (2 instead of 5)."""
    b = broker_factory(extra=AS_ROOT + ["max_queued_messages 5"])
    b.rewrite_conf(AS_ROOT + ["max_queued_messages 2"])
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"(Reloaded configuration|Reloading config)")  # the reload is done
    s = m.RawClient(b.port)
    s.connect("hup-mq", clean=False)
    s.subscribe([("hupmq/t", 1)])
    s.disconnect()
    p = m.RawClient(b.port)
    p.connect("hup-mq-pub")
    for i in range(6):
        p.publish("hupmq/t", b"%d" % i, qos=1, pid=i + 1)
    p.disconnect()
    # Every PUBACK came after its delivery was handed to the session's thread (threads 2),
    # and the reconnect below is handed over after them: no wait is needed; the notice is
    # logged all the same.
    b.wait_log(r"Outgoing messages are being dropped for client hup-mq\.")
    s = m.RawClient(b.port)
    assert s.connect("hup-mq", clean=False).session_present == 1
    assert [p.payload for p in s.collect(2)] == [b"0", b"1"]
    assert_nothing_before_ping(s)
    s.disconnect()


def _sighup_bad_file(b):
    """Rewrites b's config with allow_anonymous false and then an unknown keyword, sends
    SIGHUP, and waits for the error naming the file's line 5 (AS_ROOT may add a line)."""
    b.rewrite_conf(AS_ROOT + ["allow_anonymous false", "no_such_keyword 1"])
    line = len(b.conf_head) + len(AS_ROOT) + 2
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"no_such_keyword")
    b.wait_log(r"%s:%d" % (re.escape(os.path.basename(b.conf_path)), line))


def test_sighup_bad_file_keeps_old_settings(broker_factory):
    """A reload that finds an error in the file logs it (file and line) and changes nothing:
    the broker keeps running with the settings it had (here: anonymous clients still
    accepted), its clients stay connected."""
    b = broker_factory(extra=AS_ROOT)
    c = m.RawClient(b.port)
    c.connect("bad-old")
    _sighup_bad_file(b)
    assert b.alive()
    c.send(m.pingreq())
    c.expect(m.PINGRESP)
    d = m.RawClient(b.port)
    assert d.connect("bad-new", expect_rc=None).reason == 0
    d.close()
    c.close()


@pytest.mark.midge_only
def test_sighup_bad_file_not_reported_as_reloaded(broker_factory):
    """After a failed reload the log must not claim the configuration was reloaded."""
    b = broker_factory()
    _sighup_bad_file(b)
    # a good reload after it: its line is the only one, and it comes after the error
    b.rewrite_conf([])
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(r"Reloaded configuration")
    log = b.log()
    assert log.count("Reloaded configuration") == 1, log[-1500:]
    assert log.index("Reloaded configuration") > log.index("no_such_keyword"), log[-1500:]
    assert b.alive()


def test_sighup_allow_anonymous_false_closes_connected_anonymous(broker_factory):
    """mosquitto 2.0.11 re-applies its security settings to connected clients on reload: an
    anonymous client connected while allow_anonymous was true is disconnected once the
    reloaded file says false (tightening access takes effect at once)."""
    b = broker_factory(extra=AS_ROOT)
    c = m.RawClient(b.port)
    c.connect("anon-old")
    b.rewrite_conf(AS_ROOT + ["allow_anonymous false"])
    b.proc.send_signal(signal.SIGHUP)
    # bounded, not timed: a busy machine may take seconds over the reload (ASan build)
    assert c.expect_closed(timeout=15, allow_disconnect=True) is not None
    c.close()


# ---------------------------------------------------------------- -d

def test_daemon_pid_file_serves_and_stops(tmp_path):
    """mosquitto(8) -d: "Run mosquitto in the background as a daemon". The foreground
    process exits 0, pid_file holds the daemon's pid, the daemon serves clients, SIGTERM
    stops it and the pid file is removed (mosquitto 2.0 removes it on exit too)."""
    port = free_port()
    pid_path = tmp_path / "d.pid"
    log_path = tmp_path / "d.log"
    asan_base = str(tmp_path / "asan-daemon")
    lines = ["listener %d 127.0.0.1" % port, "allow_anonymous true",
             "pid_file %s" % pid_path, "log_dest file %s" % log_path] + AS_ROOT
    if IS_MIDGE:
        lines.append("threads 1")
    conf = tmp_path / "d.conf"
    conf.write_text("\n".join(lines) + "\n")
    env = broker_env()
    # the daemon's stderr is /dev/null: sanitizer reports go to files we can check
    env["ASAN_OPTIONS"] = "detect_leaks=1:log_path=" + asan_base
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:log_path=" + asan_base
    env["TSAN_OPTIONS"] = "second_deadlock_stack=1:log_path=" + asan_base
    fg = subprocess.run(broker_argv(str(conf), verbose=False) + ["-d"], env=env,
                        cwd=str(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, timeout=10)
    assert fg.returncode == 0, fg.stdout.decode(errors="replace")
    pid = None
    try:
        _wait_for(lambda: _read(pid_path).strip().isdigit(), what="the pid file")
        pid = int(_read(pid_path).strip())
        os.kill(pid, 0)  # the daemon runs
        _wait_for(lambda: _listening(port), what="the daemon's listener")
        assert_broker_serves(port, tag="daemon")
        os.kill(pid, signal.SIGTERM)
        _wait_for(lambda: _gone(pid), timeout=10, what="the daemon to exit")
        pid = None
        _wait_for(lambda: not pid_path.exists(), timeout=2, what="the pid file removed")
    finally:
        if pid is not None and not _gone(pid):
            os.kill(pid, signal.SIGKILL)
    reports = [_read(f) for f in glob.glob(asan_base + "*")]
    assert not reports, "sanitizer report from the daemon:\n" + "\n".join(reports)[-8000:]


def _listening(port):
    try:
        c = m.RawClient(port, timeout=0.5)
        c.close()
        return True
    except OSError:
        return False


def _gone(pid):
    """The process has exited (a zombie not yet reaped by init counts as exited)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


# ---------------------------------------------------------------- SIGINT / SIGTERM

@pytest.mark.midge_only
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_shutdown_v5_disconnect_0x8b_v311_close(broker_factory, sig):
    """[MQTT-3.14.0] / 4.13.2: the Server may send DISCONNECT with Reason Code 0x8B (Server
    shutting down) before closing; midge does so for 5.0 clients (mosquitto 2.0.11 just
    closes). 3.1.1 has no server-sent DISCONNECT: a 3.1.1 client sees the close only. The
    broker exits 0 (checked by stop())."""
    b = broker_factory()
    v5 = m.RawClient(b.port, version=5)
    v5.connect("down5", version=5)
    v4 = m.RawClient(b.port)
    v4.connect("down4")
    assert b.stop(sig=sig) == 0
    got5 = v5.expect_closed()
    assert [(p.type, p.reason) for p in got5] == [(m.DISCONNECT, 0x8B)], got5
    assert v4.expect_closed(allow_disconnect=False) == []
    v5.close()
    v4.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_shutdown_v311_clients_see_close_exit_0(broker_factory, sig):
    """SIGINT / SIGTERM: exit status 0 (mosquitto(8)); a 3.1.1 client gets no packet, just
    the close (3.1.1 has no server-sent DISCONNECT)."""
    b = broker_factory()
    c = m.RawClient(b.port)
    c.connect("down311")
    assert b.stop(sig=sig) == 0
    assert c.expect_closed(allow_disconnect=False) == []
    c.close()


@pytest.mark.threaded
def test_shutdown_publishes_wills_of_connected_clients(broker_factory):
    """5.0 3.1.2.5 / 3.1.1 3.1.2.5: the Will Message is published when "the Server closes
    the Network Connection without first receiving a DISCONNECT" ([MQTT-3.1.2-8]); a broker
    shutting down closes every connection that way. mosquitto 2.0.11 sends the will of each
    connected client to connected subscribers before closing them."""
    b = broker_factory()
    s = m.RawClient(b.port)
    s.connect("will-sub")
    s.subscribe([("sdw/#", 1)])
    w = m.RawClient(b.port)
    w.connect("will-owner", will=dict(topic="sdw/t", payload=b"gone", qos=1))
    assert b.stop() == 0
    got = s.expect_closed(allow_disconnect=True)
    pubs = [p for p in got if p.type == m.PUBLISH]
    assert [(p.topic, p.payload) for p in pubs] == [("sdw/t", b"gone")], got
    s.close()
    w.close()
