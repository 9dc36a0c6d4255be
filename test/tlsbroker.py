"""A broker with one TLS listener per case, for the client-side TLS tests (test/client/
test_client_tls.py, test/interop/test_tools_tls.py): Debian's mosquitto, started once per
test module. The listeners, by name (TlsBroker.port[name]):

  ca        the server certificate (CN=localhost, SAN localhost, 127.0.0.1, ::1), anonymous
  other     a certificate for otherhost.invalid only: the host name does not match
  expired   a server certificate that expired in 2020
  reqcert   require_certificate true with the CA's CRL (the revoked client is refused)
  psk       TLS-PSK with tlscerts' identity and key, no certificates
  passwd    the server certificate, allow_anonymous false, a password_file made with
            mosquitto_passwd: user "alice", password PASSWORD
  plain     plain MQTT (no TLS)

per_listener_settings true, so each listener has its own anonymous / password settings.
"""

import os
import signal
import socket
import subprocess
import time

MOSQUITTO = "/usr/sbin/mosquitto"
PASSWORD = "s3cret-pw"
NAMES = ("ca", "other", "expired", "reqcert", "psk", "passwd", "plain")


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class TlsBroker:
    def __init__(self, directory, certs):
        self.dir = directory
        self.port = {n: _free_port() for n in NAMES}
        self.passwd = os.path.join(directory, "passwd")
        open(self.passwd, "w").close()
        subprocess.run(["/usr/bin/mosquitto_passwd", "-b", self.passwd, "alice", PASSWORD],
                       check=True, capture_output=True, timeout=30)
        c = certs
        lines = ["per_listener_settings true", "persistence false"]
        if os.geteuid() == 0:
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
        listener("passwd", *server, "password_file " + self.passwd, anonymous=False)
        listener("plain")
        self.conf = os.path.join(directory, "mosquitto-tls.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = os.path.join(directory, "mosquitto-tls.log")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf, "-v"],
                                     stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        for n in NAMES:
            if not _wait_port(self.port[n]):
                self.stop()
                raise RuntimeError("mosquitto did not start:\n" + open(self.log).read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
