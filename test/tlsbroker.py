"""A broker with one TLS listener per case, for the client-side TLS tests (test/client/
test_client_tls.py, test/interop/test_tools_tls.py): Debian's mosquitto or midge of this
build ($MIDGE_BUILD/bin/midge), from the same mosquitto.conf lines, started once per test
module. The listeners, by name (TlsBroker.port[name]):

  ca        the server certificate (CN=localhost, SAN localhost, 127.0.0.1, ::1), anonymous
  other     a certificate for otherhost.invalid only: the host name does not match
  expired   a server certificate that expired in 2020
  reqcert   require_certificate true with the CA's CRL (the revoked client is refused)
  psk       TLS-PSK with tlscerts' identity and key, no certificates
  passwd    the server certificate, allow_anonymous false, a password_file made with
            mosquitto_passwd: user "alice", password PASSWORD
  plain     plain MQTT (no TLS)

per_listener_settings true, so each listener has its own anonymous / password settings.
A midge that does not take password_file and per_listener_settings yet (midge
--test-config says so) gets no "passwd" listener: port["passwd"] is None.
"""

import os
import signal
import socket
import subprocess
import time
import ports  # noqa: E402  (test/ports.py)

MOSQUITTO = "/usr/sbin/mosquitto"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("MIDGE_BUILD", "build")
MIDGE = os.path.join(BUILD if os.path.isabs(BUILD) else os.path.join(ROOT, BUILD), "bin", "midge")
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:",
                      "WARNING: ThreadSanitizer")
PASSWORD = "s3cret-pw"
NAMES = ("ca", "other", "expired", "reqcert", "psk", "passwd", "plain")


def _midge_takes_passwords(directory, passwd):
    conf = os.path.join(directory, "midge-pwcheck.conf")
    with open(conf, "w") as f:
        f.write("per_listener_settings true\nlistener %d 127.0.0.1\nallow_anonymous false\n"
                "password_file %s\n" % (_free_port(), passwd))
    r = subprocess.run([MIDGE, "-c", conf, "--test-config"], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    return r.returncode == 0


_free_port = ports.free_port  # claimed across processes: test/ports.py


def _wait_port(port, timeout=10.0):
    return ports.wait_port(port, timeout)


class TlsBroker:
    def __init__(self, directory, certs, kind="mosquitto"):
        self.kind = kind
        self.dir = directory
        self.port = {n: _free_port() for n in NAMES}
        self.passwd = os.path.join(directory, "passwd")
        open(self.passwd, "w").close()
        subprocess.run(["/usr/bin/mosquitto_passwd", "-b", self.passwd, "alice", PASSWORD],
                       check=True, capture_output=True, timeout=30)
        passwords = kind == "mosquitto" or _midge_takes_passwords(directory, self.passwd)
        if not passwords:
            self.port["passwd"] = None
        c = certs
        lines = ["per_listener_settings true"] if passwords else []
        lines.append("persistence false")
        if os.geteuid() == 0 and kind == "mosquitto":
            lines.append("user root")  # else it drops to user mosquitto, who cannot read tmp
        server = ["cafile " + c.ca, "certfile " + c.server_cert, "keyfile " + c.server_key]

        def listener(name, *conf, anonymous=True):
            lines.append("listener %d 127.0.0.1" % self.port[name])
            lines.append("allow_anonymous %s" % ("true" if anonymous else "false"))
            lines.extend(conf)

        listener("ca", *server)
        listener("other", "cafile " + c.ca, "certfile " + c.other_cert, "keyfile " + c.other_key)
        listener("expired", "cafile " + c.ca, "certfile " + c.expired_cert,
                 "keyfile " + c.expired_key)
        listener("reqcert", *server, "require_certificate true", "crlfile " + c.crl)
        listener("psk", "psk_hint midge-test", "psk_file " + c.psk_file)
        if passwords:
            listener("passwd", *server, "password_file " + self.passwd, anonymous=False)
        listener("plain")
        self.conf = os.path.join(directory, "%s-tls.conf" % kind)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = os.path.join(directory, "%s-tls.log" % kind)
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        self.proc = subprocess.Popen([MOSQUITTO if kind == "mosquitto" else MIDGE, "-c", self.conf,
                                      "-v"], stdout=open(self.log, "a"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        for n in NAMES:
            if self.port[n] and not _wait_port(self.port[n]):
                self.stop()
                raise RuntimeError("%s did not start:\n%s" % (kind, open(self.log).read()))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        text = open(self.log).read()
        for p in SANITIZER_PATTERNS:
            assert p not in text, "sanitizer report from %s:\n%s" % (self.kind, text[-6000:])
