"""Bridges inside midge over TLS (issue 12): bridge_cafile / bridge_certfile / bridge_keyfile
with a client certificate, bridge_identity / bridge_psk, the remote's host name checked (and
not with bridge_insecure), bridge_alpn, bridge_require_ocsp. net/tls.c's client side on the
bridge's worker loop."""

import subprocess
import time

import pytest

from mqtt_raw import RawClient
from lib.harness import IS_MIDGE, Broker, free_port
from tlscerts import tls_certs  # noqa: F401  (the session-scoped fixture)

pytestmark = pytest.mark.skipif(not IS_MIDGE, reason="midge's own bridges")

PSK_HINT = "midge-hint"


@pytest.fixture(scope="module")
def far(tmp_path_factory, tls_certs):  # noqa: F811
    """The remote: a plain listener for the test's subscriber, TLS listeners for the bridges."""
    c = tls_certs
    ports = {k: free_port() for k in ("cert", "psk", "other")}
    b = Broker(tmp_path_factory.mktemp("bridge-tls"), threads=2, name="far", extra=[
        "psk_file %s" % c.psk_file,
        "listener %d 127.0.0.1" % ports["cert"],
        "cafile %s" % c.ca, "certfile %s" % c.server_cert, "keyfile %s" % c.server_key,
        "require_certificate true", "use_identity_as_username true",
        "listener %d 127.0.0.1" % ports["psk"],
        "psk_hint %s" % PSK_HINT, "use_identity_as_username true",
        "listener %d 127.0.0.1" % ports["other"],  # a certificate for otherhost.invalid
        "cafile %s" % c.ca, "certfile %s" % c.other_cert, "keyfile %s" % c.other_key])
    sub = RawClient(b.port)
    sub.connect("tls-far-sub")
    sub.subscribe([("t/#", 1)])
    yield b, ports, sub
    sub.close()
    b.stop()


def run_bridge(tmp_path, far, lines, name):
    b, ports, sub = far
    near = Broker(tmp_path, threads=1, name="near", extra=[
        "connection %s" % name, "remote_clientid near-%s" % name, "restart_timeout 1",
        "topic t/%s/# out 1" % name] + lines)
    return near


def test_client_certificate(tmp_path, far, tls_certs):  # noqa: F811
    """The remote requires a certificate and takes its CN as the user name."""
    c = tls_certs
    b, ports, sub = far
    near = run_bridge(tmp_path, far, ["address localhost:%d" % ports["cert"],
                                      "bridge_cafile %s" % c.ca, "bridge_certfile %s" % c.client_cert,
                                      "bridge_keyfile %s" % c.client_key], "cert")
    pub = RawClient(near.port)
    try:
        pub.connect("tls-pub")
        pub.publish("t/cert/1", b"over tls", qos=1)
        p = sub.recv_publish(timeout=20)
        assert (p.topic, p.payload) == ("t/cert/1", b"over tls")
        b.wait_log(r"New bridge connected from 127\.0\.0\.1:\d+ as near-cert .*u'client1'")
    finally:
        pub.close()
        near.stop()


def test_psk(tmp_path, far, tls_certs):  # noqa: F811
    c = tls_certs
    b, ports, sub = far
    near = run_bridge(tmp_path, far, ["address 127.0.0.1:%d" % ports["psk"],
                                      "bridge_identity %s" % c.psk_identity,
                                      "bridge_psk %s" % c.psk_hex], "psk")
    pub = RawClient(near.port)
    try:
        pub.connect("psk-pub")
        pub.publish("t/psk/1", b"psk", qos=1)
        p = sub.recv_publish(timeout=20)
        assert (p.topic, p.payload) == ("t/psk/1", b"psk")
    finally:
        pub.close()
        near.stop()


@pytest.mark.parametrize("insecure", [False, True], ids=["checked", "insecure"])
def test_host_name_checked(tmp_path, far, tls_certs, insecure):  # noqa: F811
    """A certificate for another host name is refused (the bridge tries again and again,
    never connected) unless bridge_insecure true."""
    c = tls_certs
    b, ports, sub = far
    near = run_bridge(tmp_path, far, ["address localhost:%d" % ports["other"],
                                      "bridge_cafile %s" % c.ca,
                                      "bridge_insecure %s" % str(insecure).lower()],
                      "ins" if insecure else "chk")
    try:
        if insecure:
            near.wait_log(r"Received CONNACK on connection local\.near-ins", timeout=20)
        else:
            near.wait_log(r"Connecting bridge chk", count=2, timeout=20)  # the first one failed
            assert "Received CONNACK" not in near.log()
            assert "certificate verify failed" in near.log()
    finally:
        near.stop()


# ---- bridge_alpn and bridge_require_ocsp against `openssl s_server` (it prints the ALPN a
# client offers, staples a given OCSP response with -status_file, and writes what it receives
# to stdout: the bridge's CONNECT there says the handshake passed)

class SServer:
    def __init__(self, tmp_path, certs, args, name):
        self.port = free_port()
        self.out_path = tmp_path / ("%s.out" % name)
        self._f = open(self.out_path, "wb")
        self.p = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port, "-cert",
             certs.server_cert, "-key", certs.server_key] + args,
            stdin=subprocess.PIPE, stdout=self._f, stderr=subprocess.STDOUT)
        self.wait_out(b"ACCEPT")

    def out(self):
        return self.out_path.read_bytes()

    def wait_out(self, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        while what not in self.out():
            assert self.p.poll() is None, self.out()
            assert time.monotonic() < deadline, "s_server never showed %r:\n%r" % (what, self.out())
            time.sleep(0.05)

    def stop(self):
        self.p.kill()
        self.p.wait()
        self.p.stdin.close()
        self._f.close()


@pytest.fixture(scope="module")
def ocsp(tmp_path_factory, tls_certs):  # noqa: F811
    """OCSP responses for server_cert signed by the CA ('good' and 'revoked'), made by
    `openssl ocsp` as a responder from index files of our own."""
    c = tls_certs
    d = tmp_path_factory.mktemp("ocsp")
    serial = subprocess.run(["openssl", "x509", "-serial", "-noout", "-in", c.server_cert],
                            capture_output=True, text=True, check=True).stdout.strip().split("=")[1]
    out = {}
    for kind, line in (("good", "V\t491231235959Z\t\t%s\tunknown\t/CN=localhost\n"),
                       ("revoked", "R\t491231235959Z\t240101000000Z\t%s\tunknown\t/CN=localhost\n")):
        idx = d / (kind + ".idx")
        idx.write_text(line % serial)
        out[kind] = str(d / (kind + ".der"))
        subprocess.run(["openssl", "ocsp", "-index", str(idx), "-rsigner", c.ca, "-rkey", c.ca_key,
                        "-CA", c.ca, "-issuer", c.ca, "-cert", c.server_cert, "-respout",
                        out[kind], "-ndays", "1"], capture_output=True, check=True, timeout=60)
    return out


def tls_near(tmp_path, srv, certs, name, lines):
    return Broker(tmp_path, threads=1, name="near-" + name, extra=[
        "connection %s" % name, "address localhost:%d" % srv.port, "remote_clientid near-%s" % name,
        "restart_timeout 1", "bridge_cafile %s" % certs.ca, "topic t/# out 1"] + lines)


def test_alpn(tmp_path, tls_certs):  # noqa: F811
    """bridge_alpn mqtt: the remote sees 'mqtt' offered in the handshake."""
    srv = SServer(tmp_path, tls_certs, ["-alpn", "mqtt"], "alpn")
    near = tls_near(tmp_path, srv, tls_certs, "alpn", ["bridge_alpn mqtt"])
    try:
        srv.wait_out(b"ALPN protocols advertised by the client: mqtt")
        srv.wait_out(b"near-alpn")  # and the CONNECT after the handshake
    finally:
        near.stop()
        srv.stop()


@pytest.mark.parametrize("stapled", ["good", "revoked", "none"])
def test_require_ocsp(tmp_path, tls_certs, ocsp, stapled):  # noqa: F811
    """bridge_require_ocsp true: a good stapled response lets the bridge connect; a revoked
    one, or none, fails the handshake (logged, retried), and no CONNECT reaches the remote."""
    args = [] if stapled == "none" else ["-status_file", ocsp[stapled]]
    srv = SServer(tmp_path, tls_certs, args, "ocsp-" + stapled)
    name = "oc" + stapled[0]
    near = tls_near(tmp_path, srv, tls_certs, name, ["bridge_require_ocsp true"])
    try:
        if stapled == "good":
            srv.wait_out(b"near-" + name.encode())
            near.wait_log(r"Bridge %s: OCSP: SSL certificate status: good" % name)
        else:
            why = ("OCSP: SSL certificate revocation reason" if stapled == "revoked"
                   else r"OCSP: no response \(bridge_require_ocsp true\)")
            near.wait_log(r"Bridge %s: %s" % (name, why))
            near.wait_log(r"Connecting bridge %s" % name, count=2, timeout=20)  # the first ended
            assert b"near-" + name.encode() not in srv.out()
            assert "Received CONNACK" not in near.log()
    finally:
        near.stop()
        srv.stop()
