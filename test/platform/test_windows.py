"""The Windows builds (make windows -> build/win64) run for real under Wine (Debian's wine64)
and talk to the Linux broker on loopback: the lecture's two machines on one, with the "Pi"
side played by the Linux programs and the "Windows" side by the .exe files.

  7-2  a temperature published on the Pi side is printed by temp_sub.exe
  7-3  start / stop typed into controller.exe reach the Linux sensor program, whose
       temperatures come back to the controller
  7-4  a JPEG sent by the Linux camera_pub arrives byte-identical through image_sub.exe
  midge_sub.exe / midge_pub.exe against Debian's mosquitto_pub / mosquitto_sub (QoS 2, -l)
  client_win.exe: libmidge itself (connect, QoS 0/1/2, reconnect, loop_start/loop_stop)
  TLS through Windows' Schannel (client/tls_schannel.c; Wine runs it over GnuTLS): the tools,
       client_win.exe and wss:// against the broker's TLS listeners, a wrong CA and a wrong
       host name refused in words

Wine runs headless (no DISPLAY, WINEDEBUG=-all) in a prefix made once per session under the
session's temporary directory and shared by the xdist workers; making it takes seconds, every
later start a fraction of one. Skipped, with the reason, when wine64 or build/win64 is absent:
`scripts/install-deps platforms` installs mingw-w64 and wine64, `make windows` builds.
"""

import base64
import fcntl
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

TEST_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TEST_DIR)
from harness import Broker, MIDGE_BUILD  # noqa: E402  (test/broker/lib, via test/conftest.py)
from examples.test_examples_lecture import tiny_jpeg  # noqa: E402
import ports  # noqa: E402  (test/ports.py)
import procs  # noqa: E402  (test/procs.py)
from tlscerts import tls_certs  # noqa: E402,F401  (the session-scoped certificate fixture)

ROOT = os.path.dirname(TEST_DIR)
WIN = os.path.join(ROOT, "build", "win64")
WINBIN = os.path.join(WIN, "bin")
LINUX_EX = os.path.join(MIDGE_BUILD if os.path.isabs(MIDGE_BUILD) else os.path.join(ROOT, MIDGE_BUILD),
                        "bin", "examples")
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
WAIT = 30.0  # bound on every wait: Wine on a busy 2-core machine is slow to start


def _wine64():
    for p in ("/usr/lib/wine/wine64", shutil.which("wine64") or ""):
        if p and os.access(p, os.X_OK):
            return p
    return None


WINE = _wine64()
WINESERVER = next((p for p in ("/usr/lib/wine/wineserver64", "/usr/lib/wine/wineserver",
                               shutil.which("wineserver") or "") if p and os.access(p, os.X_OK)),
                  None)

pytestmark = [
    pytest.mark.skipif(WINE is None, reason="wine64 not installed (scripts/install-deps platforms)"),
    pytest.mark.skipif(not os.path.exists(os.path.join(WINBIN, "midge.dll")),
                       reason="build/win64 not built (make windows, with mingw-w64 from "
                              "scripts/install-deps platforms)"),
]


@pytest.fixture(scope="session")
def wine_env(tmp_path_factory):
    """The environment for wine: one prefix for the session, shared by the xdist workers
    (under the common parent of their temporary directories) through a lock and a count of
    users; the last one out stops its wineserver and removes it (it is ~700 MB of DLLs)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    prefix = base / "wineprefix"
    users = base / "wineprefix.users"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY" and not k.startswith("WAYLAND")}
    env.update(WINEPREFIX=str(prefix), WINEDEBUG="-all", WINEARCH="win64",
               # no Mono / Gecko installer dialogs while the prefix is made
               WINEDLLOVERRIDES="mscoree=;mshtml=")
    with open(str(base / "wineprefix.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (prefix / "system.reg").exists():
            r = subprocess.run([WINE, "wineboot", "--init"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=180)
            assert (prefix / "system.reg").exists(), "wine prefix not made:\n%s" % r.stdout
        n = int(users.read_text()) if users.exists() else 0
        users.write_text(str(n + 1))
    yield env
    with open(str(base / "wineprefix.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        n = int(users.read_text()) - 1
        users.write_text(str(n))
        if n == 0:
            if WINESERVER:  # wine's own services (winedevice.exe, ...) with it
                subprocess.run([WINESERVER, "-k"], env=env, timeout=60)
            shutil.rmtree(str(prefix), ignore_errors=True)


class WinProc:
    """A Windows program under Wine, output in files (Windows' \\r\\n read as \\n)."""

    def __init__(self, env, tmp_path, n, argv, stdin=None, cwd=None):
        self.name = os.path.basename(argv[0])
        self.out_path = str(tmp_path / ("%s.%d.out" % (self.name, n)))
        self._out = open(self.out_path, "wb")
        self.p = procs.start([WINE] + list(argv), self._out, stdin, env=env, cwd=cwd)

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def out(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r\n", "\n")

    def lines(self):
        return [l for l in self.out().split("\n") if l]

    def wait_out(self, regex, timeout=WAIT):
        rx = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while not rx.search(self.out()):
            assert self.p.poll() is None or rx.search(self.out()), \
                "%s exited (%s) before printing %r:\n%s" % (self.name, self.p.poll(), regex, self.out())
            assert time.monotonic() < deadline, "%s never printed %r:\n%s" % (self.name, regex, self.out())
            time.sleep(0.05)

    def wait(self, timeout=WAIT):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s did not finish in %.0f s:\n%s" % (self.name, timeout, self.out()))

    def kill(self):
        procs.stop(self.p)
        if self.p.stdin and not self.p.stdin.closed:
            self.p.stdin.close()
        self._out.close()


@pytest.fixture(scope="module")
def linux_broker(tmp_path_factory, tls_certs):
    """The Linux broker (MIDGE_BUILD's midge), one for the module, with a plain listener, a
    WebSockets one (ws_port), and TLS ones with tls_certs' server certificate: MQTT (tls_port),
    WebSockets (wss_port) and one whose certificate names otherhost.invalid only
    (other_port), and one that requires a client certificate from tls_certs' CA (cert_port);
    stopped and checked for sanitizer reports at the end."""
    c = tls_certs
    ws, tls, wss, other, need = (ports.free_port() for _ in range(5))
    cert = ["certfile %s" % c.server_cert, "keyfile %s" % c.server_key]
    b = Broker(tmp_path_factory.mktemp("winbroker"), threads=1,
               extra=["listener %d 127.0.0.1" % ws, "protocol websockets",
                      "listener %d 127.0.0.1" % tls] + cert +
                     ["listener %d 127.0.0.1" % wss, "protocol websockets"] + cert +
                     ["listener %d 127.0.0.1" % other,
                      "certfile %s" % c.other_cert, "keyfile %s" % c.other_key] +
                     ["listener %d 127.0.0.1" % need, "cafile %s" % c.ca, "require_certificate true"] + cert)
    b.ws_port, b.tls_port, b.wss_port, b.other_port, b.cert_port = ws, tls, wss, other, need
    for p in (ws, tls, wss, other, need):
        ports.wait_port(p)
    yield b
    b.stop()


def rsa_values_full_length(key):
    """Every value of the RSA private key at full length: d as long as the modulus, the
    primes and CRT values half as long (no leading zero byte)."""
    out = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-text"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, check=True, text=True).stdout
    values, name = {}, None
    for line in out.splitlines():
        m = re.match(r"^(\w+):\s*(.*)$", line)
        if m:
            name = m.group(1)
            values[name] = "" if m.group(2).startswith("(") else m.group(2)
        elif name and line.startswith("    "):
            values[name] += line.strip()
    size = {k: len(bytes.fromhex(v.replace(":", "")).lstrip(b"\0"))
            for k, v in values.items() if re.fullmatch(r"[0-9a-f:]+", v)}
    n = size["modulus"]
    want = {"privateExponent": n, "prime1": n // 2, "prime2": n // 2, "exponent1": n // 2,
            "exponent2": n // 2, "coefficient": n // 2}
    return all(size.get(k) == v for k, v in want.items())


@pytest.fixture(scope="session")
def client_pfx(tmp_path_factory, tls_certs):
    """A client certificate (CN=client1, from tls_certs' CA) with its key in a PKCS#12 file, no
    password: what the Windows build takes for a client certificate. RSA, because Wine's
    PFXImportCertStore imports RSA keys only (Windows takes EC ones too); 3DES and SHA-1 for the
    file's own protection, which every Windows reads."""
    d = tmp_path_factory.mktemp("winpfx")
    key, csr, crt, pfx = (str(d / n) for n in ("c.key", "c.csr", "c.crt", "client.pfx"))
    run = lambda *a: subprocess.run(["openssl"] + list(a), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, check=True)
    # Wine (8.0, crypt32 over GnuTLS) cannot import an RSA key whose private exponent or
    # CRT values have a leading zero byte ("GnuTLS error: The scanning of a large integer has
    # failed", then AcquireCredentialsHandle 0x80090304); Windows can. About one random key
    # in ten has one (shown: such a key fails this test, a full-length one passes), so the
    # test takes a key with every value at full length instead of failing now and then.
    for _ in range(50):
        run("genrsa", "-out", key, "2048")
        if rsa_values_full_length(key):
            break
    else:
        pytest.fail("50 RSA keys in a row had a short value")
    run("req", "-new", "-key", key, "-subj", "/CN=client1", "-out", csr)
    run("x509", "-req", "-in", csr, "-CA", tls_certs.ca, "-CAkey", tls_certs.ca_key, "-set_serial", "4242",
        "-days", "30", "-out", crt)
    run("pkcs12", "-export", "-inkey", key, "-in", crt, "-out", pfx, "-passout", "pass:",
        "-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1")
    return pfx


def winpath(path):
    """A Linux path as the Windows programs see it under Wine (drive Z: is /)."""
    return "Z:" + str(path).replace("/", "\\")


@pytest.fixture
def win(wine_env, tmp_path):
    """win(name, *args, stdin=None, cwd=None) -> WinProc of build/win64/.../name.exe"""
    started = []

    def start(name, *args, stdin=None, cwd=None, where=WINBIN):
        exe = os.path.join(where, name + ".exe")
        assert os.path.exists(exe), "%s not built (make windows)" % exe
        p = WinProc(wine_env, tmp_path, len(started), [exe] + list(args), stdin, cwd)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


@pytest.fixture
def linux(tmp_path):
    """linux(argv, stdin=None) -> Popen of a Linux program, output in a file; killed at the end."""
    started = []

    def start(argv, stdin=None):
        path = tmp_path / ("linux%d.out" % len(started))
        f = open(str(path), "wb")
        p = procs.start(argv, f, stdin)
        p.out = lambda: path.read_bytes().decode("utf-8", "replace")
        p.f = f
        started.append(p)
        return p

    yield start
    for p in started:
        procs.stop(p)
        p.f.close()


def linux_ex(name):
    path = os.path.join(LINUX_EX, name)
    assert os.access(path, os.X_OK), "%s not built" % path
    return path


def mosquitto_pub(broker, *args):
    r = subprocess.run([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(broker.port)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=WAIT)
    assert r.returncode == 0, r.stdout


def probe_until(proc, broker, topic, payload, regex):
    """A receiver prints nothing when it has subscribed: publish a probe every 0.3 s until it
    prints it; from then on it is subscribed."""
    rx = re.compile(regex, re.M)
    deadline = time.monotonic() + WAIT
    while not rx.search(proc.out()):
        assert proc.p.poll() is None, "%s exited (%s):\n%s" % (proc.name, proc.p.poll(), proc.out())
        assert time.monotonic() < deadline, "%s never got the probe:\n%s" % (proc.name, proc.out())
        mosquitto_pub(broker, "-t", topic, "-m", payload)
        time.sleep(0.3)


# ------------------------------------------------------------------------------ libmidge

def test_libmidge_on_windows(win, linux_broker):
    """connect, the wake-up channel, QoS 0/1/2 round trips, reconnect after a session
    takeover, loop_start and loop_stop: client_win.exe prints one line per step that passed."""
    p = win("client_win", "127.0.0.1", linux_broker.port, "win-lib-test", where=os.path.join(WIN, "test"))
    rc = p.wait(timeout=90)
    assert rc == 0, p.out()
    steps = [l for l in p.lines() if l.startswith(("ok ", "FAIL "))]
    assert steps == ["ok connect", "ok wake", "ok loop_start", "ok qos0", "ok qos1", "ok qos2",
                     "ok reconnect", "ok loop_stop"], p.out()


def test_dll_exports_public_api_only():
    """midge.dll exports the midge_* functions a program links to, nothing internal; the
    import library and the static library are there for both ways of linking."""
    objdump = shutil.which("x86_64-w64-mingw32-objdump")
    if not objdump:
        pytest.skip("x86_64-w64-mingw32-objdump not installed (mingw-w64)")
    out = subprocess.run([objdump, "-p", os.path.join(WINBIN, "midge.dll")], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    names = re.findall(r"^\s*\[\s*\d+\]\s+(\S+)$", out, re.M)
    assert "midge_client_new" in names and "midge_loop_start" in names and "midge_publish" in names
    assert all(n.startswith("midge_") for n in names), [n for n in names if not n.startswith("midge_")]
    dlls = set(re.findall(r"DLL Name: (\S+)", out))
    # winpthreads linked in; Secur32 and CRYPT32 are Schannel's (TLS), in every Windows
    assert dlls <= {"KERNEL32.dll", "msvcrt.dll", "WS2_32.dll", "Secur32.dll", "CRYPT32.dll"}, dlls
    for f in ("lib/libmidge.a", "lib/libmidge.dll.a", "include/midge/midge.h"):
        assert os.path.exists(os.path.join(WIN, f)), f


# ------------------------------------------------------------------- the lecture, 7-2 .. 7-4

def test_7_2_temperature_to_windows_temp_sub(win, linux, linux_broker):
    """7-2: temperatures typed into the Pi's temp_pub are printed by temp_sub.exe."""
    sub = win("temp_sub", "-h", "127.0.0.1", "-p", linux_broker.port)
    probe_until(sub, linux_broker, "room/temp", "-99", r"^room/temp, -99$")
    pub = linux([linux_ex("temp_pub"), "-h", "127.0.0.1", "-p", linux_broker.port], stdin=True)
    pub.stdin.write(b"23\n-5\n0\n")
    pub.stdin.close()
    assert pub.wait(timeout=WAIT) == 0, pub.out()
    sub.wait_out(r"^room/temp, -5$")
    probe_until(sub, linux_broker, "room/temp", "-98", r"^room/temp, -98$")
    got = [l for l in sub.lines() if l not in ("room/temp, -99", "room/temp, -98")]
    assert got == ["room/temp, 23", "room/temp, -5"]


def test_7_3_windows_controller_starts_and_stops_linux_sensor(win, linux, linux_broker):
    """7-3: start / stop typed into controller.exe reach the Pi's sensor program, and the
    temperatures it then sends are printed by the controller."""
    sensor = linux([linux_ex("sensor"), "-h", "127.0.0.1", "-p", linux_broker.port])
    ctl = win("controller", "-h", "127.0.0.1", "-p", linux_broker.port, stdin=True)
    probe_until(ctl, linux_broker, "room/temp", "probe", r"^room/temp, probe$")
    # "start" until the sensor (subscribed by then) says it got it
    deadline = time.monotonic() + WAIT
    while "command: start" not in sensor.out():
        assert time.monotonic() < deadline, sensor.out() + ctl.out()
        ctl.send(b"start\n")
        time.sleep(0.5)
    sent = lambda: [l.split(" ")[1] for l in sensor.out().split("\n") if l.startswith("room/temp ")]
    deadline = time.monotonic() + WAIT
    while len(sent()) < 2:
        assert time.monotonic() < deadline, sensor.out()
        time.sleep(0.1)
    ctl.send(b"stop\n")
    # the temperatures sent before the stop, in order, on the Windows side
    deadline = time.monotonic() + WAIT
    while "command: stop" not in sensor.out():
        assert time.monotonic() < deadline, sensor.out()
        time.sleep(0.05)
    final = sent()
    for t in final:
        ctl.wait_out(r"^room/temp, %s$" % re.escape(t))
    temps = [l.split(", ")[1] for l in ctl.lines() if l.startswith("room/temp, ") and l != "room/temp, probe"]
    assert temps[:len(final)] == final
    ctl.send(b"exit\n")
    assert ctl.wait() == 0, ctl.out()


def test_7_4_jpeg_byte_identical_through_windows_image_sub(win, linux_broker, tmp_path):
    """7-4: the Pi's camera_pub sends a JPEG file; image_sub.exe saves it byte-identical."""
    work = tmp_path / "winwork"
    work.mkdir()
    img = tmp_path / "photo.jpg"
    img.write_bytes(tiny_jpeg(640, 480, os.urandom(50000)))  # binary bytes of every value
    sub = win("image_sub", "-h", "127.0.0.1", "-p", linux_broker.port, cwd=str(work))
    deadline = time.monotonic() + WAIT
    while "saved data/image1.jpg" not in sub.out():
        assert sub.p.poll() is None, sub.out()
        assert time.monotonic() < deadline, sub.out()
        r = subprocess.run([linux_ex("camera_pub"), "-h", "127.0.0.1", "-p", str(linux_broker.port),
                            "-d", "/nonexistent/video0", str(img)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=WAIT)
        assert r.returncode == 0, r.stdout
        time.sleep(0.5)
    assert "saved data/image1.jpg (%d bytes)" % img.stat().st_size in sub.out()
    assert (work / "data" / "image1.jpg").read_bytes() == img.read_bytes()


# ------------------------------------------------------------------------------- the tools

def test_midge_sub_exe_receives_qos2(win, linux_broker):
    """midge_sub.exe -d: its SUBACK line is the sync point; a QoS 2 message from Debian's
    mosquitto_pub is printed with its topic and the exe exits after -C 1."""
    sub = win("midge_sub", "-h", "127.0.0.1", "-p", linux_broker.port, "-t", "win/sub/#",
              "-q", "2", "-v", "-d", "-C", "1")
    sub.wait_out(r"received SUBACK")
    mosquitto_pub(linux_broker, "-t", "win/sub/x", "-q", "2", "-m", "hello from linux")
    assert sub.wait() == 0, sub.out()
    assert "win/sub/x hello from linux" in sub.lines()
    assert re.search(r"received PUBLISH \(d0, q2, r0, m\d+, 'win/sub/x', \.\.\. \(16 bytes\)\)", sub.out()), sub.out()


def test_midge_pub_exe_lines_from_a_pipe(win, linux, linux_broker):
    """midge_pub.exe -l -q 1: each line of a pipe on its stdin becomes a message (the stdin
    reader thread of tools/common/os_win.c), and Debian's mosquitto_sub gets them in order."""
    msub = linux(["/usr/bin/stdbuf", "-oL", MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", linux_broker.port, "-t", "win/pub",
                  "-v", "-d", "-C", "3"])
    deadline = time.monotonic() + WAIT
    while "SUBACK" not in msub.out():
        assert time.monotonic() < deadline, msub.out()
        time.sleep(0.05)
    pub = win("midge_pub", "-h", "127.0.0.1", "-p", linux_broker.port, "-t", "win/pub", "-q", "1",
              "-l", stdin=b"one\ntwo\r\nthree")
    assert pub.wait() == 0, pub.out()
    assert msub.wait(timeout=WAIT) == 0, msub.out()
    got = [l for l in msub.out().split("\n") if l.startswith("win/pub ")]
    # text mode on Windows: "\r\n" ends a line as "\n" does (mosquitto_pub's fgets there)
    assert got == ["win/pub one", "win/pub two", "win/pub three"]


def test_refused_connect_is_named(win):
    """Nothing listens: the non-blocking connect fails through select()'s exception set, the
    WSA code becomes ECONNREFUSED, and the tool says so in words (Windows' strerror has none
    for it), as midge_sub does on Linux."""
    sub = win("midge_sub", "-h", "127.0.0.1", "-p", ports.free_port(), "-t", "x", "-d")
    assert sub.wait() == 1, sub.out()
    assert "connect failed: Connection refused" in sub.out()
    assert sub.lines()[-1] == "Error: Connection refused", sub.out()


def test_websockets_both_ends_on_windows(win, linux_broker):
    """MQTT over WebSockets from Windows (net/ws.c's client end, its masks from rand_s):
    midge_pub.exe to midge_sub.exe through the broker's WebSockets listener, QoS 1."""
    url = "ws://127.0.0.1:%d/mqtt" % linux_broker.ws_port
    sub = win("midge_sub", "-L", url, "-t", "win/ws", "-q", "1", "-v", "-d", "-C", "1")
    sub.wait_out(r"received SUBACK")
    pub = win("midge_pub", "-L", url, "-t", "win/ws", "-q", "1", "-m", "over a WebSocket", "-d")
    assert pub.wait() == 0, pub.out()
    assert "received PUBACK" in pub.out(), pub.out()
    assert sub.wait() == 0, sub.out()
    assert "win/ws over a WebSocket" in sub.lines(), sub.out()


def test_tls_pem_client_certificate_says_not_supported(win, tls_certs):
    """A client certificate and key as PEM files is what the Windows build leaves out (Schannel
    wants the key in a Windows key store; a PKCS#12 file is taken instead): asking for one fails
    at set-up, in words, instead of connecting without it."""
    c = tls_certs
    pub = win("midge_pub", "-p", "1", "-t", "x", "-m", "y", "--cafile", winpath(c.ca),
              "--cert", winpath(c.client_cert), "--key", winpath(c.client_key))
    assert pub.wait() == 1, pub.out()
    assert "Problem setting TLS options: This feature is not supported" in pub.out(), pub.out()


# ----------------------------------------------------------------------- TLS (Schannel)

def test_libmidge_over_tls_on_windows(win, linux_broker, tls_certs):
    """client_win.exe's steps (connect, wake, QoS 0/1/2, reconnect by the loop thread,
    loop_stop) with every connection TLS, the broker's certificate checked against the CA
    file: the Schannel transport under libmidge's loop, both of its threads."""
    p = win("client_win", "127.0.0.1", linux_broker.tls_port, "win-tls-test", winpath(tls_certs.ca),
            where=os.path.join(WIN, "test"))
    rc = p.wait(timeout=90)
    assert rc == 0, p.out()
    steps = [l for l in p.lines() if l.startswith(("ok ", "FAIL "))]
    assert steps == ["ok connect", "ok wake", "ok loop_start", "ok qos0", "ok qos1", "ok qos2",
                     "ok reconnect", "ok loop_stop"], p.out()


def test_tls_big_message_between_windows_tools(win, linux_broker, tls_certs, tmp_path):
    """midge_pub.exe -f to midge_sub.exe, both over TLS: 200 kB (base64 of random bytes, so
    the console's text mode leaves it alone), many records each way (EncryptMessage one record
    per write, DecryptMessage several per read, records split across socket reads), arrives
    identical. The subscriber checks the certificate for the name localhost (a DNS
    subjectAltName), the publisher for 127.0.0.1 (an IP one)."""
    data = base64.b64encode(os.urandom(150000)).decode()
    src = tmp_path / "big.txt"
    src.write_text(data)
    ca = winpath(tls_certs.ca)
    sub = win("midge_sub", "-h", "localhost", "-p", linux_broker.tls_port, "--cafile", ca,
              "-t", "win/tls/big", "-q", "1", "-C", "1", "-d")
    sub.wait_out(r"received SUBACK")
    pub = win("midge_pub", "-h", "127.0.0.1", "-p", linux_broker.tls_port, "--cafile", ca,
              "-t", "win/tls/big", "-q", "1", "-f", winpath(src), "-d")
    assert pub.wait() == 0, pub.out()
    assert "received PUBACK" in pub.out(), pub.out()
    assert sub.wait() == 0, sub.out()
    assert data in sub.lines(), sub.out()[-300:]


def test_tls_wrong_ca_refused_in_words(win, linux_broker, tls_certs):
    """A broker certificate the CA file did not sign: the connection ends after the handshake,
    before CONNECT is sent, and -d says why (the chain ends in a root the cafile lacks)."""
    pub = win("midge_pub", "-h", "127.0.0.1", "-p", linux_broker.tls_port,
              "--cafile", winpath(tls_certs.wrong_ca), "-t", "x", "-m", "never", "-d")
    assert pub.wait() == 8, pub.out()
    assert "certificate verify failed: unable to get local issuer certificate" in pub.out(), pub.out()
    assert pub.lines()[-1] == "Error: A TLS error occurred.", pub.out()
    assert "received CONNACK" not in pub.out(), pub.out()


def test_tls_host_name_checked_and_insecure(win, linux_broker, tls_certs):
    """A certificate from the right CA for another name (otherhost.invalid) is refused for
    127.0.0.1 with OpenSSL's line; --insecure skips the name (not the chain) and publishes."""
    args = ["-h", "127.0.0.1", "-p", linux_broker.other_port, "--cafile", winpath(tls_certs.ca),
            "-t", "win/tls/name", "-q", "1", "-m", "m", "-d"]
    pub = win("midge_pub", *args)
    assert pub.wait() == 8, pub.out()
    assert "Error: host name verification failed." in pub.lines(), pub.out()
    pub = win("midge_pub", *(args + ["--insecure"]))
    assert pub.wait() == 0, pub.out()
    assert "received PUBACK" in pub.out(), pub.out()


def test_tls_minimum_version_holds(win, tls_certs, tmp_path):
    """--tls-version tlsv1.3 against a server that speaks TLS 1.2 at most (Debian's openssl
    s_server -tls1_2): no connection, and no CONNECT goes out over 1.2. Schannel refuses it
    itself where it knows 1.3; Wine 8's ignores the credentials' version bits and offers 1.2,
    which the check after the handshake refuses."""
    port = ports.free_port()
    out = tmp_path / "s_server.out"
    with open(str(out), "wb") as f:
        srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-tls1_2",
                                "-cert", tls_certs.server_cert, "-key", tls_certs.server_key],
                               stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT)
    try:
        assert ports.wait_port(port, timeout=WAIT), out.read_bytes()
        pub = win("midge_pub", "-h", "127.0.0.1", "-p", port, "--cafile", winpath(tls_certs.ca),
                  "--tls-version", "tlsv1.3", "-t", "x", "-m", "never", "-d")
        assert pub.wait() == 8, pub.out()
        assert pub.lines()[-1] == "Error: A TLS error occurred.", pub.out()
        assert "received CONNACK" not in pub.out(), pub.out()
    finally:
        srv.kill()
        srv.wait()
    assert b"MQTT" not in out.read_bytes()  # s_server prints what it decrypts: no CONNECT


def test_tls_client_certificate_from_pfx(win, linux_broker, tls_certs, client_pfx):
    """A listener with require_certificate: midge_pub.exe with --cert/--key naming one PKCS#12
    file (PFXImportCertStore, the certificate handed to Schannel's credentials) is let in and
    publishes; the same without them is refused in the handshake, so it was the certificate."""
    args = ["-h", "127.0.0.1", "-p", linux_broker.cert_port, "--cafile", winpath(tls_certs.ca),
            "-t", "win/tls/cert", "-q", "1", "-m", "m", "-d"]
    pub = win("midge_pub", *(args + ["--cert", winpath(client_pfx), "--key", winpath(client_pfx)]))
    assert pub.wait() == 0, pub.out()
    assert "received PUBACK" in pub.out(), pub.out()
    pub = win("midge_pub", *args)
    assert pub.wait() == 8, pub.out()
    assert pub.lines()[-1] == "Error: A TLS error occurred.", pub.out()
    assert "received CONNACK" not in pub.out(), pub.out()


def test_wss_both_ends_on_windows(win, linux_broker, tls_certs):
    """MQTT over WebSockets over TLS from Windows: the WebSocket row runs over the Schannel
    row (wss://), midge_pub.exe to midge_sub.exe, QoS 1."""
    url = "wss://localhost:%d/mqtt" % linux_broker.wss_port
    ca = winpath(tls_certs.ca)
    sub = win("midge_sub", "-L", url, "--cafile", ca, "-t", "win/wss", "-q", "1", "-v", "-d", "-C", "1")
    sub.wait_out(r"received SUBACK")
    pub = win("midge_pub", "-L", url, "--cafile", ca, "-t", "win/wss", "-q", "1", "-m", "over wss", "-d")
    assert pub.wait() == 0, pub.out()
    assert "received PUBACK" in pub.out(), pub.out()
    assert sub.wait() == 0, sub.out()
    assert "win/wss over wss" in sub.lines(), sub.out()
