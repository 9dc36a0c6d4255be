"""Helpers and fixtures for the libmidge tests (test/client/): Debian's mosquitto broker on a
free loopback port, a scripted fake broker, and the C test programs of test/client/c/, which the
Makefile builds into $MIDGE_BUILD/test/client/ against that build's libmidge.a (so
MIDGE_BUILD=build/asan runs them under ASan+UBSan, build/tsan under TSan).

These tests always use mosquitto as the broker (they test the client library, not midge)."""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import mqtt_raw  # noqa: E402  (test/mqtt_raw.py)
import ports  # noqa: E402  (test/ports.py)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("MIDGE_BUILD", "build")
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
MOSQUITTO = "/usr/sbin/mosquitto"
PY = "/usr/bin/python3"
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:",
                      "WARNING: ThreadSanitizer")


free_port = ports.free_port  # claimed across processes: test/ports.py


wait_port = ports.wait_port


class Mosquitto:
    """One mosquitto process; restart() brings it back on the same port."""

    def __init__(self, tmp, extra=""):
        self.port = free_port()
        self.conf = os.path.join(tmp, "mosquitto-%d.conf" % self.port)
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\n" % self.port)
            if "allow_anonymous" not in extra:
                f.write("allow_anonymous true\n")
            f.write("persistence false\n")
            f.write(extra)
        self.log = os.path.join(tmp, "mosquitto-%d.log" % self.port)
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf, "-v"],
                                     stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError("mosquitto did not start: " + open(self.log).read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        self.start()


class Midge:
    """The midge broker of this build ($MIDGE_BUILD/bin/midge) on a free loopback port: the
    tests that take `anybroker` run against it and against mosquitto. stop() checks that it
    exited cleanly without a sanitizer report."""

    def __init__(self, tmp, extra=""):
        self.port = free_port()
        self.conf = os.path.join(tmp, "midge-%d.conf" % self.port)
        with open(self.conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\n" % self.port)
            f.write(extra)
        self.log = os.path.join(tmp, "midge-%d.log" % self.port)
        exe = os.path.join(BUILD, "bin", "midge")
        if not os.access(exe, os.X_OK):
            pytest.fail("%s is not built" % exe)
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.proc = subprocess.Popen([exe, "-c", self.conf, "-v"], stdout=open(self.log, "a"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError("midge did not start: " + open(self.log).read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        check_sanitizers(open(self.log).read())


def program(name):
    """The test program test/client/c/<name>.c as the Makefile built it into
    $MIDGE_BUILD/test/client/ (same compiler flags and sanitizers as that build's libmidge)."""
    exe = os.path.join(BUILD, "test", "client", name)
    if not os.access(exe, os.X_OK):
        pytest.fail("%s is not built (make BUILD=%s)" % (exe, os.path.relpath(BUILD, ROOT)))
    return exe


def check_sanitizers(text):
    for p in SANITIZER_PATTERNS:
        assert p not in text, "sanitizer report:\n" + text


def run(args, timeout=30, check=True):
    """Run a test program to its end; returns (stdout lines, returncode)."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    check_sanitizers(r.stderr)
    if check:
        assert r.returncode == 0, "exit %d\nstdout:\n%s\nstderr:\n%s" % (r.returncode, r.stdout, r.stderr)
    return r.stdout.splitlines(), r.returncode


class Spawned:
    """A program running in the background whose stdout lines we can wait for."""

    def __init__(self, args):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines = []
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        self.err = ""

    def _read(self):
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def expect(self, pred, timeout=10.0):
        """Wait for a line matching pred (a substring or a callable); returns it."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting; got:\n" + "\n".join(self.lines))
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("program ended; got:\n" + "\n".join(self.lines) +
                                     "\nstderr:\n" + self.finish(1)[1])
            self.lines.append(line)
            if (pred(line) if callable(pred) else pred in line):
                return line

    def finish(self, timeout=20):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.t.join(2)
        while True:
            try:
                line = self.q.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        self.err = self.proc.stderr.read()
        check_sanitizers(self.err)
        return self.proc.returncode, self.err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class FakeBroker:
    """Accepts connections one at a time and lets the test script each one."""

    def __init__(self):
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(10)
        self.port = self.srv.getsockname()[1]

    def accept(self, version=4):
        s, _ = self.srv.accept()
        c = mqtt_raw.RawClient.__new__(mqtt_raw.RawClient)
        c.version = version
        c.timeout = 5.0
        c.sock = s
        c.buf = bytearray()
        return c

    def close(self):
        self.srv.close()


# ---- fixtures: test modules import them by name (no conftest.py here: several directories
# ---- have one, and `from conftest import` would then pick the wrong one)

@pytest.fixture
def mosq(tmp_path):
    m = Mosquitto(str(tmp_path))
    yield m
    m.stop()



@pytest.fixture
def mosq_factory(tmp_path):
    made = []

    def make(extra=""):
        m = Mosquitto(str(tmp_path), extra)
        made.append(m)
        return m
    yield make
    for m in made:
        m.stop()



@pytest.fixture(params=["midge", "mosquitto"])
def anybroker(request, tmp_path):
    """A broker on a free loopback port: midge of this build, then Debian's mosquitto."""
    b = Midge(str(tmp_path)) if request.param == "midge" else Mosquitto(str(tmp_path))
    yield b
    b.stop()


@pytest.fixture(params=["midge", "mosquitto"])
def anybroker_factory(request, tmp_path):
    """anybroker_factory(extra_config) -> a started broker (midge, then mosquitto); the
    config lines must mean the same to both."""
    made = []

    def make(extra=""):
        b = Midge(str(tmp_path), extra) if request.param == "midge" else \
            Mosquitto(str(tmp_path), extra)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


@pytest.fixture(scope="session")
def cbin():
    return program



@pytest.fixture
def spawn():
    made = []

    def make(args):
        s = Spawned(args)
        made.append(s)
        return s
    yield make
    for s in made:
        s.kill()


@pytest.fixture
def fake():
    f = FakeBroker()
    yield f
    f.close()
