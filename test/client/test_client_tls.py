"""libmidge over TLS against Debian's mosquitto (test/tlsbroker.py): CA file and path, client
certificates (plain and encrypted key), TLS-PSK, the system CA store, host name verification
and --insecure, expired and untrusted certificates, username/password over TLS, and a
handshake that never finishes (the connect timeout ends it; the loop is not blocked).

The C program is test/client/c/tlstest.c; MIDGE_TLS = -12 (MIDGE_ERR_TLS)."""

import os
import socket
import ssl
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from client_helpers import run  # noqa: E402
from client_helpers import cbin  # noqa: E402,F401  (fixture)
from tlsbroker import PASSWORD, TlsBroker  # noqa: E402
from tlscerts import tls_certs  # noqa: E402,F401  (fixture)

ERR_TLS = -12
ERR_ERRNO = -10
ERR_TIMEOUT = -9
ERR_INVAL = -1


@pytest.fixture(scope="module", params=["mosquitto", "midge"])
def tb(request, tmp_path_factory, tls_certs):
    b = TlsBroker(str(tmp_path_factory.mktemp("tlsbroker")), tls_certs, request.param)
    yield b
    b.stop()


def tlstest(cbin, port, *args, env=None):
    argv = [cbin("tlstest"), "-p", str(port)] + [str(a) for a in args]
    if env:
        saved = dict(os.environ)
        os.environ.update(env)
    try:
        lines, rc = run(argv)
    finally:
        if env:
            os.environ.clear()
            os.environ.update(saved)
    return lines


def test_cafile_roundtrip_large_message(tb, tls_certs, cbin):
    # 300 kB: many TLS records each way, so a record that arrives in pieces and the read loop
    # that drains OpenSSL's buffer are both exercised.
    out = tlstest(cbin, tb.port["ca"], "--cafile", tls_certs.ca, "-s", 300000, "-h", "localhost")
    assert "tls_set rc=0" in out
    assert "connect rc=0" in out
    assert "roundtrip ok" in out, out
    assert "disconnect rc=0" in out


def test_capath(tb, tls_certs, cbin):
    out = tlstest(cbin, tb.port["ca"], "--capath", tls_certs.capath)
    assert "connect rc=0" in out and "roundtrip ok" in out, out


def test_untrusted_ca_fails(tb, tls_certs, cbin):
    out = tlstest(cbin, tb.port["ca"], "--cafile", tls_certs.wrong_ca, "-d")
    assert "connect rc=%d" % ERR_TLS in out, out
    assert "on_connect_fail rc=%d" % ERR_TLS in out
    assert any(line.startswith("log: OpenSSL Error[0]: ") and "certificate verify failed" in line
               for line in out), out
    assert "log: Error: host name verification failed." not in out


def test_hostname_mismatch_fails_unless_insecure(tb, tls_certs, cbin):
    out = tlstest(cbin, tb.port["other"], "--cafile", tls_certs.ca, "-d")
    assert "connect rc=%d" % ERR_TLS in out, out
    assert "log: Error: host name verification failed." in out
    # the same by name: the certificate names otherhost.invalid, not localhost
    out = tlstest(cbin, tb.port["other"], "--cafile", tls_certs.ca, "-h", "localhost")
    assert "connect rc=%d" % ERR_TLS in out, out
    out = tlstest(cbin, tb.port["other"], "--cafile", tls_certs.ca, "--insecure")
    assert "tls_insecure_set rc=0" in out
    assert "connect rc=0" in out and "roundtrip ok" in out, out


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_hostname_matches_name_and_address(tb, tls_certs, cbin, host):
    # the server certificate has DNS:localhost and IP:127.0.0.1; the "other" test above shows
    # that a name not among them fails
    out = tlstest(cbin, tb.port["ca"], "--cafile", tls_certs.ca, "-h", host)
    assert "connect rc=0" in out, out


def test_expired_server_certificate_fails(tb, tls_certs, cbin):
    out = tlstest(cbin, tb.port["expired"], "--cafile", tls_certs.ca, "-d")
    assert "connect rc=%d" % ERR_TLS in out, out
    assert any("certificate verify failed" in line for line in out), out
    # and only the date is wrong: without verification the same server is accepted
    out = tlstest(cbin, tb.port["expired"], "--cafile", tls_certs.ca, "--no-verify")
    assert "connect rc=0" in out, out


def test_no_verify_accepts_untrusted(tb, tls_certs, cbin):
    # cert_reqs MIDGE_TLS_CERT_NONE: the chain is not checked (nor the name)
    out = tlstest(cbin, tb.port["expired"], "--cafile", tls_certs.wrong_ca, "--no-verify")
    assert "tls_opts_set rc=0" in out
    assert "connect rc=0" in out and "roundtrip ok" in out, out


def test_client_certificate(tb, tls_certs, cbin):
    port = tb.port["reqcert"]
    out = tlstest(cbin, port, "--cafile", tls_certs.ca, "--cert", tls_certs.client_cert,
                  "--key", tls_certs.client_key)
    assert "connect rc=0" in out and "roundtrip ok" in out, out
    # without one, the broker's alert after the handshake ends the connect: errno EPROTO, as
    # libmosquitto reports it
    out = tlstest(cbin, port, "--cafile", tls_certs.ca, "-d")
    # (or, when the broker's close overtakes its alert, MIDGE_ERR_CONN_LOST)
    assert "connect rc=%d" % ERR_ERRNO in out or "connect rc=-5" in out, out


def test_revoked_client_certificate_refused(tb, tls_certs, cbin):
    out = tlstest(cbin, tb.port["reqcert"], "--cafile", tls_certs.ca, "--cert",
                  tls_certs.revoked_cert, "--key", tls_certs.revoked_key)
    assert "connect rc=0" not in out, out
    assert "roundtrip ok" not in out


def test_encrypted_key_password_callback(tb, tls_certs, cbin):
    out = tlstest(cbin, tb.port["reqcert"], "--cafile", tls_certs.ca, "--cert",
                  tls_certs.client_cert, "--key", tls_certs.client_key_enc,
                  "--keypass", tls_certs.key_password)
    assert "pw_callback rwflag=0 userdata=ok" in out, out
    assert "connect rc=0" in out and "roundtrip ok" in out, out
    # a wrong password: the key cannot be read, the connect fails before any socket
    out = tlstest(cbin, tb.port["reqcert"], "--cafile", tls_certs.ca, "--cert",
                  tls_certs.client_cert, "--key", tls_certs.client_key_enc, "--keypass", "nope",
                  "-d")
    assert "connect rc=%d" % ERR_TLS in out, out
    assert any('Unable to load client key file' in line for line in out), out


def test_psk(tb, tls_certs, cbin):
    out = tlstest(cbin, tb.port["psk"], "--psk", tls_certs.psk_hex, "--psk-identity",
                  tls_certs.psk_identity)
    assert "tls_psk_set rc=0" in out
    assert "connect rc=0" in out and "roundtrip ok" in out, out
    out = tlstest(cbin, tb.port["psk"], "--psk", "00ff", "--psk-identity", tls_certs.psk_identity)
    assert "connect rc=%d" % ERR_TLS in out, out
    out = tlstest(cbin, tb.port["psk"], "--psk", "xyz", "--psk-identity", "id")
    assert "tls_psk_set rc=%d" % ERR_INVAL in out


def test_system_ca_store(tb, tls_certs, cbin):
    # The system store does not trust the test CA ...
    out = tlstest(cbin, tb.port["ca"], "--os-certs")
    assert "tls_use_os_certs rc=0" in out
    assert "connect rc=%d" % ERR_TLS in out, out
    # ... and it is what is loaded: OpenSSL's default paths follow SSL_CERT_FILE
    out = tlstest(cbin, tb.port["ca"], "--os-certs", env={"SSL_CERT_FILE": tls_certs.ca})
    assert "connect rc=0" in out and "roundtrip ok" in out, out


def test_settings_refused(tls_certs, cbin):
    out = tlstest(cbin, 1, "--cafile", "/nonexistent/ca.crt")
    assert "tls_set rc=%d" % ERR_INVAL in out
    out = tlstest(cbin, 1, "--cafile", tls_certs.ca, "--tls-version", "tlsv1")
    assert "tls_opts_set rc=%d" % ERR_INVAL in out
    out = tlstest(cbin, 1, "--cafile", tls_certs.ca, "--cert", tls_certs.client_cert)
    assert "tls_set rc=%d" % ERR_INVAL in out


def test_unknown_cipher_list_fails_at_connect(tb, tls_certs, cbin):
    out = tlstest(cbin, tb.port["ca"], "--cafile", tls_certs.ca, "--ciphers", "NO-SUCH-CIPHER")
    assert "tls_opts_set rc=0" in out
    assert "connect rc=%d" % ERR_TLS in out, out


class Tls12Broker:
    """A broker stand-in that speaks TLS 1.2 at most (Python's ssl; mosquitto's tls_version
    is a minimum too): it completes the handshake, reads the CONNECT and accepts it."""

    def __init__(self, certs):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ctx.load_cert_chain(certs.server_cert, certs.server_key)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(10)
        self.port = self.srv.getsockname()[1]
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        while True:
            try:
                s, _ = self.srv.accept()
            except OSError:
                return
            try:
                s.settimeout(10)
                with self.ctx.wrap_socket(s, server_side=True) as t:
                    t.recv(2)  # the CONNECT's first bytes
                    t.sendall(b"\x20\x02\x00\x00")
                    t.recv(100)  # until the client closes
            except (OSError, ssl.SSLError):
                s.close()

    def close(self):
        try:
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        except OSError:
            pass
        self.srv.close()
        self.t.join(15)


def test_tls_version_minimum(tls_certs, cbin):
    # the version is the lowest accepted: a 1.3 minimum cannot talk to a 1.2-only broker, the
    # default (1.2) can
    b = Tls12Broker(tls_certs)
    try:
        out = tlstest(cbin, b.port, "--cafile", tls_certs.ca, "--tls-version", "tlsv1.3",
                      "--connect-only")
        assert "connect rc=%d" % ERR_TLS in out, out
        out = tlstest(cbin, b.port, "--cafile", tls_certs.ca, "--tls-version", "tlsv1.2",
                      "--connect-only")
        assert "connect rc=0" in out, out
        out = tlstest(cbin, b.port, "--cafile", tls_certs.ca, "--connect-only")
        assert "connect rc=0" in out, out
    finally:
        b.close()


def test_username_password_over_tls(tb, tls_certs, cbin):
    if tb.port["passwd"] is None:
        pytest.skip("this midge does not take password_file / per_listener_settings yet")
    out = tlstest(cbin, tb.port["passwd"], "--cafile", tls_certs.ca, "-u", "alice", "-P", PASSWORD)
    assert "connect rc=0" in out and "roundtrip ok" in out, out
    out = tlstest(cbin, tb.port["passwd"], "--cafile", tls_certs.ca, "-u", "alice", "-P", "wrong")
    assert "connect rc=5" in out, out  # 3.1.1 CONNACK: not authorised
    out = tlstest(cbin, tb.port["passwd"], "--cafile", tls_certs.ca)
    assert "connect rc=5" in out, out


def test_tls_to_plain_port_fails(tb, tls_certs, cbin):
    out = tlstest(cbin, tb.port["plain"], "--cafile", tls_certs.ca, "-T", 5000)
    assert "connect rc=0" not in out, out


def test_silent_handshake_times_out_without_blocking(tls_certs, cbin):
    # A server that accepts and never answers the ClientHello: the connect timeout ends the
    # handshake, and meanwhile midge_loop keeps returning (the loop is not blocked in it).
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    conns = []

    def accept():
        try:
            conns.append(srv.accept()[0])
        except OSError:
            pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        out = tlstest(cbin, srv.getsockname()[1], "--cafile", tls_certs.ca, "-T", 1500,
                      "--async", 200)
    finally:
        srv.close()
        t.join(5)
        for c in conns:
            c.close()
    assert "connect_async rc=0" in out
    assert "on_connect_fail rc=%d" % ERR_TIMEOUT in out, out
    # turns of the loop that returned while the handshake was pending
    assert "turn 2 connected=0" in out, out


@pytest.mark.threaded
def test_loop_thread_over_tls(tb, tls_certs, cbin):
    # midge_loop_start's thread runs the handshake and the reads while the main thread
    # connects, subscribes, publishes 300 kB and waits (TSan checks the sharing in make test)
    out = tlstest(cbin, tb.port["ca"], "--cafile", tls_certs.ca, "--thread", "-s", 300000)
    assert "loop_start rc=0" in out
    assert "connect rc=0" in out and "roundtrip ok" in out, out
    assert "loop_stop rc=0" in out


def test_tls_through_socks5_proxy(tb, tls_certs, cbin):
    # TCP to the proxy, SOCKS5 to the broker, then the TLS handshake inside the tunnel, with
    # the certificate checked against the broker's name (not the proxy's)
    from test_client_socks import Socks5  # one connection per proxy
    p, q = Socks5(), Socks5()
    try:
        out = tlstest(cbin, tb.port["ca"], "--cafile", tls_certs.ca, "-h", "localhost",
                      "--proxy", p.port)
        assert "proxy_set rc=0" in out
        assert "connect rc=0" in out and "roundtrip ok" in out, out
        assert p.requests == [(3, "localhost", tb.port["ca"])]
        out = tlstest(cbin, tb.port["other"], "--cafile", tls_certs.ca, "-h", "localhost",
                      "--proxy", q.port)
        assert "connect rc=%d" % ERR_TLS in out, out
        assert q.requests == [(3, "localhost", tb.port["other"])]
    finally:
        p.close()
        q.close()
