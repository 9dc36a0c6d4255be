"""Helpers for the tests of midge_pub, midge_sub (test/interop) and the lecture's programs
(test/examples): brokers on free loopback ports, client processes with bounded waits, and
sanitizer checks of every midge process's output. The fixtures are in the conftest.py files."""

import os
import re
import socket
import subprocess
import time

import pytest
import ports  # noqa: E402  (test/ports.py)
import procs  # noqa: E402  (test/procs.py)

# The same conventions as test/conftest.py and its harness, kept here so these helpers stand
# on their own: MIDGE_BUILD (default "build", relative to the repository root) holds bin/.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MIDGE_BUILD = os.environ.get("MIDGE_BUILD", "build")
if not os.path.isabs(MIDGE_BUILD):
    MIDGE_BUILD = os.path.join(ROOT, MIDGE_BUILD)
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:",
                      "ThreadSanitizer")


free_port = ports.free_port  # claimed across processes: test/ports.py


BIN = os.path.join(MIDGE_BUILD, "bin")
MIDGE_BROKER = os.path.join(BIN, "midge")
MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
# mosquitto_sub line-buffered, so a test can watch its -d lines as they come
MOSQUITTO_SUB_LB = ["/usr/bin/stdbuf", "-oL", MOSQUITTO_SUB]

# Debug lines printed by -d (mosquitto's words); everything else a subscriber prints is payload.
DEBUG_RX = re.compile(r"^(Client \S+ (sending|received) |Subscribed \(mid: )")


def tool(name):
    path = os.path.join(BIN, name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s not built (make BUILD=%s)" % (path, MIDGE_BUILD))
    return path


def client_env():
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


def check_sanitizers(text, what):
    for pat in SANITIZER_PATTERNS:
        assert pat not in text, "sanitizer report from %s:\n%s" % (what, text[-6000:])


class TestBroker:
    """mosquitto or midge on a free port, with mosquitto.conf lines in `extra`."""

    __test__ = False

    def __init__(self, kind, tmp_path, extra=(), name=None, port=None):
        self.kind = kind
        self.port = port or free_port()
        name = name or "%s-%d" % (kind, self.port)
        self.conf = str(tmp_path / (name + ".conf"))
        self.log_path = str(tmp_path / (name + ".log"))
        lines = ["listener %d 127.0.0.1" % self.port]
        if not any(l.startswith("allow_anonymous") for l in extra):
            lines.append("allow_anonymous true")
        lines += list(extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        exe = MIDGE_BROKER if kind == "midge" else MOSQUITTO
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([exe, "-c", self.conf, "-v"], stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=str(tmp_path), env=client_env())
        self._wait_ready()

    def _wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                raise AssertionError("%s exited (%s) before listening:\n%s"
                                     % (self.kind, self.proc.returncode, self.log()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("%s not listening after %.0f s" % (self.kind, timeout))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self._log.closed:
            return
        procs.stop(self.proc)
        self._log.close()
        if self.kind == "midge":
            check_sanitizers(self.log(), "the midge broker")


BROKER_KINDS = ["mosquitto", "midge"]


class Client:
    """A client process; stdout and stderr go to separate files."""

    def __init__(self, argv, tmp_path, n, stdin=None, cwd=None):
        """stdin: None (/dev/null), bytes (written, then closed), or True (a pipe left open
        for send() / close_stdin())."""
        self.argv = argv
        self.out_path = str(tmp_path / ("client%d.out" % n))
        self.err_path = str(tmp_path / ("client%d.err" % n))
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.p = procs.start(argv, self._out, stdin, stderr=self._err, env=client_env(), cwd=cwd)

    def send(self, data):
        """Types data on the program's stdin (opened with stdin=True)."""
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        if self.p.stdin and not self.p.stdin.closed:
            self.p.stdin.close()

    def out_bytes(self):
        with open(self.out_path, "rb") as f:
            return f.read()

    def out(self):
        return self.out_bytes().decode("utf-8", "replace")

    def err(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def payload_lines(self):
        """stdout without the -d debug lines."""
        return [l for l in self.out().split("\n") if l and not DEBUG_RX.match(l)]

    def wait_out(self, regex, timeout=5.0):
        rx = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.out())
            if m:
                return m
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("%s: output never matched %r (exit %s)\nstdout:\n%s\n"
                                     "stderr:\n%s" % (os.path.basename(self.argv[0]), regex,
                                                      self.p.poll(), self.out()[-3000:],
                                                      self.err()[-3000:]))
            time.sleep(0.02)

    def wait_subscribed(self, timeout=5.0):
        """For a subscriber started with -d: returns once its SUBACK arrived."""
        return self.wait_out(r"^Subscribed \(mid: ", timeout)

    def wait(self, timeout=10.0):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not exit within %.0f s\nstdout:\n%s\nstderr:\n%s"
                                 % (" ".join(self.argv), timeout, self.out()[-3000:],
                                    self.err()[-3000:]))
        self.close()
        return rc

    def kill(self, sig=None):
        try:
            self.close_stdin()
        except OSError:
            pass
        procs.stop(self.p, 5, sig)
        self.close()

    def close(self):
        if not self._out.closed:
            self._out.close()
            self._err.close()


def run(argv, stdin=b"", timeout=15.0):
    """Runs a client to completion: (exit status, stdout bytes, stderr text). Checks a midge
    tool's output for sanitizer reports."""
    p = subprocess.run([str(a) for a in argv], input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, env=client_env())
    err = p.stderr.decode("utf-8", "replace")
    if os.path.basename(str(argv[0])).startswith("midge"):
        check_sanitizers(err, argv[0])
    return p.returncode, p.stdout, err
