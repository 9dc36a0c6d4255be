"""Fixtures shared by every pytest test under test/: a real broker on a free loopback port.

Which broker:
  MIDGE_TEST_BROKER=midge (default)  $MIDGE_BUILD/bin/midge (MIDGE_BUILD defaults to "build",
                                     relative to the repository root)
  MIDGE_TEST_BROKER=mosquitto        Debian's /usr/sbin/mosquitto: proves each test can pass
                                     against a correct, widely used broker.

Every test that uses `broker` / `broker_factory` runs with `threads 1` and `threads 2`
(midge only; mosquitto has one thread and no `threads` keyword). Stopping a midge broker
checks its exit status and that its output carries no sanitizer report, so every broker test
is also a leak and race test.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

TEST_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TEST_DIR)
if TEST_DIR not in sys.path:
    sys.path.insert(0, TEST_DIR)

KIND = os.environ.get("MIDGE_TEST_BROKER", "midge")
MIDGE_BUILD = os.environ.get("MIDGE_BUILD", "build")
if not os.path.isabs(MIDGE_BUILD):
    MIDGE_BUILD = os.path.join(ROOT, MIDGE_BUILD)
MIDGE_BIN = os.path.join(MIDGE_BUILD, "bin", "midge")
MOSQUITTO_BIN = "/usr/sbin/mosquitto"
IS_MIDGE = KIND == "midge"
IS_MOSQUITTO = KIND == "mosquitto"

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:",
                      "ThreadSanitizer")


def pytest_configure(config):
    config.addinivalue_line("markers", "threaded: exercises several clients at once; "
                            "also run under ThreadSanitizer (-m threaded)")
    config.addinivalue_line("markers", "slow: long-running (tens of seconds); still part of "
                            "the default suite")
    config.addinivalue_line("markers", "single_thread: run with `threads 1` only")
    config.addinivalue_line("markers", "midge_only: behaviour midge has by design and "
                            "mosquitto does not (skipped against mosquitto)")
    config.addinivalue_line("markers", "mosquitto_xfail(reason): mosquitto deviates from the "
                            "spec here; expected to fail against mosquitto only")


def pytest_generate_tests(metafunc):
    if "threads" in metafunc.fixturenames:
        if not IS_MIDGE or metafunc.definition.get_closest_marker("single_thread"):
            values = [1]
        else:
            values = [1, 2]
        metafunc.parametrize("threads", values, ids=["t%d" % v for v in values])


def pytest_collection_modifyitems(config, items):
    for item in items:
        if IS_MOSQUITTO and item.get_closest_marker("midge_only"):
            item.add_marker(pytest.mark.skip(reason="midge-only behaviour (by design)"))
        m = item.get_closest_marker("mosquitto_xfail")
        if IS_MOSQUITTO and m:
            reason = m.args[0] if m.args else m.kwargs.get("reason", "mosquitto deviates")
            item.add_marker(pytest.mark.xfail(reason="mosquitto 2.0.11: " + reason,
                                              strict=False))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def broker_argv(conf_path, verbose=True):
    exe = MIDGE_BIN if IS_MIDGE else MOSQUITTO_BIN
    if IS_MIDGE and not os.access(exe, os.X_OK):
        pytest.fail("midge binary not found at %s (set MIDGE_BUILD or build it)" % exe)
    return [exe, "-c", conf_path] + (["-v"] if verbose else [])


def broker_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    env.setdefault("TSAN_OPTIONS", "second_deadlock_stack=1")
    return env


class Broker:
    """A running broker process. Use through the `broker` / `broker_factory` fixtures."""

    def __init__(self, tmp_path, threads=1, extra=(), port=None, name="broker",
                 listener=True, verbose=True, args=(), env=None):
        self.port = port or free_port()
        self.threads = threads
        self.conf_path = str(tmp_path / ("%s.conf" % name))
        self.log_path = str(tmp_path / ("%s.log" % name))
        lines = []
        if listener:
            lines.append("listener %d 127.0.0.1" % self.port)
        lines.append("allow_anonymous true")
        if IS_MIDGE:
            lines.append("threads %d" % threads)
        lines.extend(extra)
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        self._logf = open(self.log_path, "wb")
        penv = broker_env()
        penv.update(env or {})
        self.proc = subprocess.Popen(broker_argv(self.conf_path, verbose) + list(args),
                                     stdout=self._logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=penv, cwd=str(tmp_path))
        self.pid = self.proc.pid
        self.stopped = False
        self.returncode = None
        self._wait_ready()

    def _wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("broker exited with %s before listening:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop(check=False)
        raise AssertionError("broker not listening on %d after %.0f s:\n%s"
                             % (self.port, timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, regex, timeout=5.0, count=1):
        """Waits until the log matches regex (at least count times); returns the last match."""
        rx = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            found = list(rx.finditer(text))
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > deadline:
                raise AssertionError("log never matched %r (%d of %d); log:\n%s"
                                     % (regex, len(found), count, text[-4000:]))
            time.sleep(0.05)

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self, check=True, sig=signal.SIGTERM):
        """SIGTERM, bounded wait, then SIGKILL. For midge, checks exit 0 and no sanitizer
        report in the output."""
        if self.stopped:
            return self.returncode
        self.stopped = True
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                killed = True
        self.returncode = self.proc.returncode
        self._logf.close()
        if check and IS_MIDGE:
            out = self.log()
            for pat in SANITIZER_PATTERNS:
                assert pat not in out, "sanitizer report in broker output:\n" + out[-8000:]
            assert not killed, "broker did not exit within 10 s of SIGTERM"
            assert self.returncode == 0, "broker exit status %s:\n%s" % (self.returncode,
                                                                         out[-4000:])
        return self.returncode


@pytest.fixture
def broker_factory(tmp_path, threads):
    """broker_factory(extra=[...lines...]) -> started Broker; all stopped (and checked) at
    the end of the test."""
    started = []

    def make(extra=(), **kw):
        kw.setdefault("name", "broker%d" % len(started))
        b = Broker(tmp_path, threads=threads, extra=extra, **kw)
        started.append(b)
        return b

    yield make
    errors = []
    for b in started:
        try:
            b.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


def run_broker_until_exit(tmp_path, conf_text, timeout=10.0, args=None):
    """Runs the broker with conf_text as its config file, expecting it to exit by itself.
    Returns (exit status, output). A broker still running after timeout is killed and the
    status is None."""
    conf = tmp_path / "exit.conf"
    conf.write_text(conf_text)
    argv = broker_argv(str(conf)) if args is None else [broker_argv(str(conf))[0]] + args
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=broker_env(), cwd=str(tmp_path))
    try:
        out, _ = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.terminate()
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        rc = None
    text = out.decode("utf-8", "replace")
    if IS_MIDGE:
        for pat in SANITIZER_PATTERNS:
            assert pat not in text, "sanitizer report in broker output:\n" + text[-8000:]
    return rc, text


class Proc:
    """A client process (mosquitto_sub, a paho script) with its output in a file; always
    killed at teardown through the `procs` fixture."""

    def __init__(self, argv, path, env=None):
        self.path = path
        self._f = open(path, "wb")
        self.p = subprocess.Popen(argv, stdout=self._f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env)

    def out(self):
        with open(self.path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_out(self, regex, timeout=5.0):
        rx = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            text = self.out()
            m = rx.search(text)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("output never matched %r; output:\n%s" % (regex, text))
            time.sleep(0.05)

    def wait(self, timeout=10.0):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("client process did not finish in %.0f s; output:\n%s"
                                 % (timeout, self.out()))

    def kill(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
        self._f.close()


@pytest.fixture
def procs(tmp_path):
    """procs(argv) -> Proc started now; every one is stopped at teardown."""
    started = []

    def start(argv, env=None):
        p = Proc(argv, str(tmp_path / ("proc%d.out" % len(started))), env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


@pytest.fixture
def raw(broker):
    """raw(client_id=None, version=4, **connect_kw) -> mqtt_raw.RawClient on `broker`.
    client_id None: no CONNECT is sent; otherwise CONNECT is sent, CONNACK checked (expect_rc,
    default 0) and kept as .connack. All are closed at teardown."""
    from mqtt_raw import RawClient
    made = []

    def make(client_id=None, version=4, port=None, rcvbuf=None, timeout=5.0, **kw):
        c = RawClient(port or broker.port, version=version, rcvbuf=rcvbuf, timeout=timeout)
        made.append(c)
        if client_id is not None:
            c.connack = c.connect(client_id, **kw)
        return c

    yield make
    for c in made:
        c.close()


def assert_broker_serves(port, tag="witness"):
    """The broker still serves other clients: a QoS 1 round trip on a fresh connection."""
    from mqtt_raw import PUBLISH, PUBACK, RawClient, publish
    c = RawClient(port)
    try:
        c.connect("%s-check" % tag)
        c.subscribe([("%s/alive" % tag, 1)], pid=3)
        c.send(publish("%s/alive" % tag, b"ok", qos=1, pid=4))
        got = {}
        for _ in range(2):
            p = c.recv()
            got[p.type] = p
        assert PUBLISH in got and got[PUBLISH].payload == b"ok"
        assert PUBACK in got and got[PUBACK].pid == 4
    finally:
        c.close()
