"""TLS on the broker's listeners, with mosquitto's keywords and meaning (issue 9).

One broker for the module with a listener per kind (server auth only; client certificates
with a CRL and use_identity_as_username; client certificates from a capath with
use_subject_as_username; TLS-PSK; TLS 1.3 only) beside its plain listener, driven by Debian's
mosquitto_pub / mosquitto_sub, paho 1.6 and Python's ssl module. Certificates come from
test/tlscerts.py (made at test time). Reload tests get their own broker, on copies of the files.

Against Debian's mosquitto (MIDGE_TEST_BROKER=mosquitto) the same tests run with `user root`
(mosquitto started as root otherwise drops to the mosquitto user, who cannot read pytest's
temporary files); what midge does by design (handshake deadline, config errors, reload of a
broken file) is midge_only.
"""

import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time

import paho.mqtt.client as paho
import pytest

from harness import IS_MOSQUITTO, Broker, assert_broker_serves, free_port, run_broker_until_exit
from mqtt_raw import CONNACK, PINGRESP, RawClient, connect, pingreq
from tlscerts import tls_certs  # noqa: F401  (the session-scoped fixture)

PSK_HINT = "midge-hint"


def tls_lines(c, ports, fullchain):
    """The module broker's TLS listeners (after its plain one). fullchain: a certfile that
    holds the server's certificate and, after it, the CA's (a chain given in the file)."""
    return [
        "psk_file %s" % c.psk_file,
        "listener %d 127.0.0.1" % ports["srv"],
        "cafile %s" % c.ca, "certfile %s" % c.server_cert, "keyfile %s" % c.server_key,
        "listener %d 127.0.0.1" % ports["req"],
        "cafile %s" % c.ca, "certfile %s" % c.server_cert, "keyfile %s" % c.server_key,
        "crlfile %s" % c.crl, "require_certificate true", "use_identity_as_username true",
        "listener %d 127.0.0.1" % ports["subj"],
        "capath %s" % c.capath, "certfile %s" % c.server_cert, "keyfile %s" % c.server_key,
        "require_certificate true", "use_subject_as_username true",
        "listener %d 127.0.0.1" % ports["psk"],
        "psk_hint %s" % PSK_HINT, "use_identity_as_username true",
        "listener %d 127.0.0.1" % ports["v13"],
        "cafile %s" % c.ca, "certfile %s" % c.server_cert, "keyfile %s" % c.server_key,
        "tls_version tlsv1.3",
        "listener %d 127.0.0.1" % ports["id_nocert"],
        "cafile %s" % c.ca, "certfile %s" % c.server_cert, "keyfile %s" % c.server_key,
        "use_identity_as_username true",
        "listener %d 127.0.0.1" % ports["fullchain"],
        "cafile %s" % c.ca, "certfile %s" % fullchain, "keyfile %s" % c.server_key,
    ] + (["user root"] if IS_MOSQUITTO else [])


@pytest.fixture(scope="module")
def tb(tmp_path_factory, tls_certs):  # noqa: F811
    """The module's broker: .b (Broker), .ports (kind -> port), .c (certificates)."""
    ports = {k: free_port() for k in ("srv", "req", "subj", "psk", "v13", "id_nocert",
                                      "fullchain")}
    d = tmp_path_factory.mktemp("tls")
    fullchain = str(d / "fullchain.crt")
    with open(fullchain, "w") as f:
        f.write(open(tls_certs.server_cert).read() + open(tls_certs.ca).read())
    b = Broker(d, threads=2, name="tls", extra=tls_lines(tls_certs, ports, fullchain))

    class T:
        pass
    t = T()
    t.b, t.ports, t.c = b, ports, tls_certs
    yield t
    b.stop()


def mosq(tool, port, *args, timeout=20):
    argv = [tool, "-h", "127.0.0.1", "-p", str(port)] + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def pub(port, *args, topic="tls/t", msg="m"):
    return mosq("mosquitto_pub", port, "-t", topic, "-m", msg, *args)


def round_trip(b, port, args, topic, cid):
    """mosquitto_sub gets what mosquitto_pub sends, both over the same TLS options."""
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                            "-C", "1", "-W", "20", "-i", cid] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        b.wait_log(r"Sending SUBACK to %s" % cid, timeout=20)  # the subscription is in place
        r = pub(port, *args, topic=topic, msg="hello over tls")
        assert r.returncode == 0, r.stderr
        out, _ = sub.communicate(timeout=20)
        assert sub.returncode == 0, out
        assert out == "hello over tls\n"
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()


def client_args(c, cert=None, key=None):
    a = ["--cafile", c.ca]
    if cert:
        a += ["--cert", cert, "--key", key]
    return a


def peer_cn(port, ca, timeout=10):
    """The CN of the certificate the broker presents on port (checked against ca)."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            subject = dict(x[0] for x in t.getpeercert()["subject"])
    return subject["commonName"]


# ---- server authentication ----

@pytest.mark.threaded
def test_server_auth_mosquitto_clients(tb):
    """certfile/keyfile/cafile: mosquitto_sub and mosquitto_pub verify the broker against the
    CA and exchange a message over TLS."""
    round_trip(tb.b, tb.ports["srv"], client_args(tb.c), "tls/srv", "sub-srv")


def test_server_cert_from_untrusted_ca_refused_by_client(tb):
    """The broker presents the certificate it was configured with: a client trusting only
    another CA refuses it (so the check above is not vacuous)."""
    r = pub(tb.ports["srv"], "--cafile", tb.c.wrong_ca)
    assert r.returncode != 0


def sent_chain(port, ca):
    """The subjects of the certificates the broker sends, in order, as openssl s_client
    shows them, after checking that s_client verified the chain against ca."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-showcerts",
                        "-CAfile", ca, "-servername", "localhost"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=20)
    assert "Verify return code: 0 (ok)" in r.stdout, r.stdout + r.stderr
    return [line.split("s:", 1)[1].strip() for line in r.stdout.splitlines()
            if line.startswith(" ") and line.lstrip()[:1].isdigit() and " s:" in line]


@pytest.mark.midge_only
def test_chain_without_root_when_certfile_has_none(tb):
    """A certfile with only the server's certificate: midge builds the chain from the cafile
    once, at load, and sends it without the self-signed root (the client has its own copy;
    RFC 8446 4.4.2), where OpenSSL by default rebuilds and checks it in every handshake and
    sends the root too (mosquitto: 2 certificates here). The client still verifies it."""
    assert sent_chain(tb.ports["srv"], tb.c.ca) == ["CN = localhost"]


def test_chain_in_certfile_is_sent_as_given(tb):
    """A certfile that brings its own chain (here the CA after the server's certificate, as a
    fullchain.pem brings its intermediates) is sent as it is, by midge as by mosquitto."""
    assert sent_chain(tb.ports["fullchain"], tb.c.ca) == ["CN = localhost", "CN = midge test CA"]


def tcp_data_segments_in(sock):
    """tcpi_data_segs_in of struct tcp_info (linux/tcp.h, since 4.6): the segments with data
    this socket has received."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, 152)[0]


def finished_with_connect(port, ctx, cid, session=None):
    """A TLS 1.3 connection whose client sends its Finished and the CONNECT in one segment,
    so that the broker reads them together; returns (socket, SSLObject, outgoing BIO) after
    the CONNACK (checked byte by byte)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost", session=session)
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            if out.pending:
                s.sendall(out.read())
            data = s.recv(65536)
            assert data, "the broker closed during the handshake"
            inc.write(data)
    obj.write(connect(cid))
    s.sendall(out.read())  # Finished and CONNECT: one segment
    got = b""
    while len(got) < 4:
        try:
            got += obj.read(4 - len(got))
        except ssl.SSLWantReadError:
            data = s.recv(65536)
            assert data, "the broker closed before CONNACK"
            inc.write(data)
    assert got == bytes([0x20, 2, 0, 0])
    return s, obj, out


def tls13_ctx(c):
    ctx = ssl.create_default_context(cafile=c.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


@pytest.mark.midge_only
def test_session_ticket_leaves_with_connack(tb):
    """TLS 1.3: the session ticket the broker issues after the client's Finished leaves in
    the same segment as the CONNACK when the CONNECT came with the Finished (one send, and
    one wakeup of the client, per connection less). The client sends its Finished and the
    CONNECT in one segment, so the broker reads them together; it must then have sent two
    segments with data in all: its handshake flight, then ticket + CONNACK (three before:
    the ticket alone, as mosquitto sends it). The ticket is there: the session resumes."""
    ctx = tls13_ctx(tb.c)
    sess = None
    for attempt in range(2):
        s, obj, out = finished_with_connect(tb.ports["srv"], ctx, "tls-ticket-%d" % attempt, sess)
        with s:
            assert tcp_data_segments_in(s) == 2
            assert obj.session_reused == (attempt == 1)
            sess = obj.session
            obj.write(bytes([0xE0, 0]))  # DISCONNECT
            s.sendall(out.read())


@pytest.mark.threaded
def test_paho_tls_set(tb):
    """paho 1.6's tls_set with a client certificate on the require_certificate listener:
    connects, subscribes, gets its own message back."""
    got = []
    cl = paho.Client(client_id="paho-tls")
    cl.tls_set(ca_certs=tb.c.ca, certfile=tb.c.client_cert, keyfile=tb.c.client_key)
    cl.on_message = lambda c, u, m: got.append(m.payload)
    cl.connect("127.0.0.1", tb.ports["req"])
    cl.loop_start()
    try:
        r, mid = cl.subscribe("tls/paho", 1)
        assert r == 0
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            info = cl.publish("tls/paho", b"paho over tls", qos=1)
            info.wait_for_publish(10)
            time.sleep(0.05)
        assert got and got[0] == b"paho over tls"
    finally:
        cl.disconnect()
        cl.loop_stop()


# ---- client certificates: require_certificate, cafile/capath, crlfile ----

def test_require_certificate_good_cert_and_identity_as_username(tb):
    """A certificate signed by the CA: accepted; use_identity_as_username makes its CN the user
    name (mosquitto logs it as u'client1')."""
    r = pub(tb.ports["req"], "-i", "cert-ok", *client_args(tb.c, tb.c.client_cert, tb.c.client_key))
    assert r.returncode == 0, r.stderr
    tb.b.wait_log(r"New client connected from \S+ as cert-ok \(p2, c1, k60, u'client1'\)\.")


def test_require_certificate_encrypted_key(tb):
    """The same client key, encrypted: mosquitto_pub asks OpenSSL for the password (here from
    stdin is not possible), so paho's keyfile_password is used instead."""
    cl = paho.Client(client_id="paho-enc")
    cl.tls_set(ca_certs=tb.c.ca, certfile=tb.c.client_cert, keyfile=tb.c.client_key_enc,
               keyfile_password=tb.c.key_password)
    assert cl.connect("127.0.0.1", tb.ports["req"]) == 0
    cl.disconnect()


@pytest.mark.parametrize("which", ["missing", "wrong_ca", "expired", "revoked"])
def test_require_certificate_refuses(tb, which):
    """No certificate, one from an untrusted CA, an expired one, a revoked one (crlfile): the
    handshake fails, the broker logs OpenSSL's reason, and it still serves others."""
    c = tb.c
    cert = {"missing": (None, None), "wrong_ca": (c.wrong_client_cert, c.wrong_client_key),
            "expired": (c.expired_client_cert, c.expired_client_key),
            "revoked": (c.revoked_cert, c.revoked_key)}[which]
    reason = {"missing": "peer did not return a certificate"}.get(which, "certificate verify failed")
    n = tb.b.log().count(reason)
    r = pub(tb.ports["req"], "-i", "refused-" + which, *client_args(c, *cert))
    assert r.returncode != 0
    tb.b.wait_log(r"OpenSSL Error\[0\]: error:[0-9A-F]+:SSL routines::%s" % reason, count=n + 1,
                  timeout=10)
    assert "refused-" + which not in tb.b.log()
    assert_broker_serves(tb.b.port, "after-" + which)


def test_capath_and_subject_as_username(tb):
    """CA from capath (hashed directory); use_subject_as_username: the subject in RFC 2253
    form is the user name."""
    r = pub(tb.ports["subj"], "-i", "subj-ok", *client_args(tb.c, tb.c.client_cert, tb.c.client_key))
    assert r.returncode == 0, r.stderr
    tb.b.wait_log(r"as subj-ok \(p2, c1, k60, u'CN=client1'\)\.")
    r = pub(tb.ports["subj"], "-i", "subj-wrong",
            *client_args(tb.c, tb.c.wrong_client_cert, tb.c.wrong_client_key))
    assert r.returncode != 0


def test_identity_as_username_without_certificate_is_bad_username(tb):
    """use_identity_as_username on a listener that does not ask for certificates: the client
    has no identity, and CONNECT is refused as mosquitto refuses it (3.1.1 CONNACK 4, bad user
    name or password; 5.0 0x86)."""
    ctx = ssl.create_default_context(cafile=tb.c.ca)
    for version, rc in ((4, 4), (5, 0x86)):
        with socket.create_connection(("127.0.0.1", tb.ports["id_nocert"]), timeout=10) as s:
            t = ctx.wrap_socket(s, server_hostname="localhost")
            t.sendall(connect("no-identity", version=version))
            data = b""
            while len(data) < 4:
                chunk = t.recv(64)
                if not chunk:
                    break
                data += chunk
            assert data[0] == CONNACK << 4
            assert data[3] == rc, data
            t.close()


# ---- TLS-PSK ----

def test_psk(tb):
    """psk_hint + psk_file: mosquitto_pub with --psk/--psk-identity connects; the identity is
    the user name (use_identity_as_username); a wrong key fails the handshake."""
    c = tb.c
    r = pub(tb.ports["psk"], "-i", "psk-ok", "--psk", c.psk_hex, "--psk-identity", c.psk_identity)
    assert r.returncode == 0, r.stderr
    tb.b.wait_log(r"as psk-ok \(p2, c1, k60, u'%s'\)\." % c.psk_identity)
    bad = "f" + c.psk_hex[1:]
    r = pub(tb.ports["psk"], "-i", "psk-bad", "--psk", bad, "--psk-identity", c.psk_identity)
    assert r.returncode != 0
    r = pub(tb.ports["psk"], "-i", "psk-who", "--psk", c.psk_hex, "--psk-identity", "nobody")
    assert r.returncode != 0
    assert "psk-bad" not in tb.b.log() and "psk-who" not in tb.b.log()


# ---- versions ----

def handshake(port, ca, version):
    """A TLS handshake with Python's ssl, exactly at version; returns the version agreed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False
    ctx.minimum_version = ctx.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers("ALL:@SECLEVEL=0")  # so that refusing it is the broker's doing
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            return t.version()


def test_tls_version_floor(tb):
    """tls_version tlsv1.3: a TLS 1.2 client is refused, a 1.3 client served (mosquitto_pub's
    --tls-version is a floor too, so the exact versions come from Python's ssl). The default
    floor is TLS 1.2: 1.2 is served on the other listener, 1.1 is not."""
    c = tb.c
    V = ssl.TLSVersion
    with pytest.raises(ssl.SSLError):
        handshake(tb.ports["v13"], c.ca, V.TLSv1_2)
    assert handshake(tb.ports["v13"], c.ca, V.TLSv1_3) == "TLSv1.3"
    r = pub(tb.ports["v13"], "--tls-version", "tlsv1.3", *client_args(c))
    assert r.returncode == 0, r.stderr
    assert handshake(tb.ports["srv"], c.ca, V.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError):
        handshake(tb.ports["srv"], c.ca, V.TLSv1_1)


# ---- the wrong protocol on a port ----

def test_plaintext_client_on_tls_port(tb):
    """A plain MQTT CONNECT on a TLS port: closed at once, logged in mosquitto's words
    (OpenSSL's 'wrong version number'), nothing sent back; a connected TLS client is not
    disturbed (its PINGREQ is answered after)."""
    ctx = ssl.create_default_context(cafile=tb.c.ca)
    s = socket.create_connection(("127.0.0.1", tb.ports["srv"]), timeout=10)
    bystander = ctx.wrap_socket(s, server_hostname="localhost")
    bystander.sendall(connect("bystander"))
    assert bystander.recv(4)[:2] == b"\x20\x02"
    n = tb.b.log().count("wrong version number")
    c = RawClient(tb.ports["srv"], timeout=10)
    c.send(connect("plain-on-tls"))
    assert c.expect_closed(allow_disconnect=False) == []
    c.close()
    tb.b.wait_log(r"(OpenSSL Error\[0\]|failed): error:0A00010B:SSL routines::wrong version number",
                  count=n + 1)
    bystander.sendall(pingreq())
    assert bystander.recv(2) == bytes([PINGRESP << 4, 0])
    bystander.close()


def test_tls_client_on_plain_port(tb):
    """A TLS client on the plain port: its ClientHello is no MQTT packet, the broker closes
    the connection and goes on serving."""
    r = pub(tb.b.port, *client_args(tb.c))
    assert r.returncode != 0
    ctx = ssl.create_default_context(cafile=tb.c.ca)
    with socket.create_connection(("127.0.0.1", tb.b.port), timeout=10) as s:
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            ctx.wrap_socket(s, server_hostname="localhost")
    assert_broker_serves(tb.b.port, "tls-on-plain")


@pytest.mark.midge_only
def test_handshake_deadline(tb):
    """A client that connects to a TLS port and sends nothing is closed by the connect
    deadline (mosquitto 2.0.11 keeps such sockets open: midge-only)."""
    c = RawClient(tb.ports["srv"], timeout=20)
    t0 = time.monotonic()
    assert c.expect_closed(allow_disconnect=False) == []
    assert time.monotonic() - t0 < 20
    c.close()


# ---- SIGHUP: certificates re-read ----

@pytest.fixture
def reload_broker(tmp_path, tls_certs):  # noqa: F811
    """A broker with one TLS listener on copies of the server's files (the test replaces them)."""
    c = tls_certs
    d = tmp_path / "live"
    d.mkdir()
    crt, key = str(d / "server.crt"), str(d / "server.key")
    shutil.copy(c.server_cert, crt)
    shutil.copy(c.server_key, key)
    port = free_port()
    b = Broker(tmp_path, threads=2, name="reload",
               extra=["listener %d 127.0.0.1" % port, "cafile %s" % c.ca, "certfile %s" % crt,
                      "keyfile %s" % key] + (["user root"] if IS_MOSQUITTO else []))
    b.wait_log(r"version \S+ running")  # mosquitto listens before it has read its files
    yield b, port, crt, key
    b.stop()


def tls_paho(port, ca, cid):
    got = []
    cl = paho.Client(client_id=cid)
    cl.tls_set(ca_certs=ca)
    cl.tls_insecure_set(True)  # the renewed certificate is for another name
    cl.on_message = lambda c, u, m: got.append(m.payload)
    cl.connect("127.0.0.1", port)
    cl.loop_start()
    return cl, got


def paho_echo(cl, got, topic, payload):
    """cl (subscribed to topic) publishes payload and gets it back."""
    deadline = time.monotonic() + 20
    while payload not in got and time.monotonic() < deadline:
        cl.publish(topic, payload, qos=1).wait_for_publish(10)
        time.sleep(0.05)
    assert payload in got


@pytest.mark.threaded
def test_reload_renewed_certificate_keeps_clients(reload_broker, tls_certs):  # noqa: F811
    """SIGHUP after the certificate and key were replaced: new connections get the new
    certificate, a client connected before keeps its connection and its traffic."""
    b, port, crt, key = reload_broker
    c = tls_certs
    assert peer_cn(port, c.ca) == "localhost"
    cl, got = tls_paho(port, c.ca, "before-reload")
    try:
        cl.subscribe("reload/t", 1)
        paho_echo(cl, got, "reload/t", b"before")
        shutil.copy(c.other_cert, crt)
        shutil.copy(c.other_key, key)
        os.kill(b.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while peer_cn(port, c.ca) != "otherhost.invalid" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert peer_cn(port, c.ca) == "otherhost.invalid"
        paho_echo(cl, got, "reload/t", b"after")
        assert cl.is_connected()
    finally:
        cl.disconnect()
        cl.loop_stop()


@pytest.mark.midge_only
def test_reload_broken_certificate_keeps_old(reload_broker, tls_certs):  # noqa: F811
    """SIGHUP with a certificate file that no longer loads: the error is logged with the
    listener's file and line, and the listener keeps serving with the certificate it had.
    (mosquitto 2.0.11 loads into the live context and is left without a usable key.)"""
    b, port, crt, key = reload_broker
    with open(crt, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    os.kill(b.pid, signal.SIGHUP)
    b.wait_log(r"Error: \S+reload\.conf:\d+: Unable to load server certificate \"%s\"\. Check certfile\."
               % crt, timeout=20)
    b.wait_log(r"listener %d keeps the certificates and keys it had before this reload\." % port)
    assert peer_cn(port, tls_certs.ca) == "localhost"
    r = pub(port, "--cafile", tls_certs.ca)
    assert r.returncode == 0, r.stderr


# ---- configuration errors at start ----

@pytest.mark.midge_only
def test_unreadable_certificate_fails_start_with_file_and_line(tmp_path, tls_certs):  # noqa: F811
    conf = ("listener %d 127.0.0.1\ncafile %s\ncertfile /nonexistent/s.crt\nkeyfile %s\n"
            % (free_port(), tls_certs.ca, tls_certs.server_key))
    rc, out = run_broker_until_exit(tmp_path, conf)
    assert rc not in (0, None), out
    assert ("exit.conf:1: Unable to load server certificate \"/nonexistent/s.crt\". Check certfile."
            in out), out
    assert "OpenSSL Error[0]: " in out


@pytest.mark.midge_only
def test_incomplete_tls_listener_is_a_config_error(tmp_path, tls_certs):  # noqa: F811
    conf = "listener %d 127.0.0.1\ncafile %s\n" % (free_port(), tls_certs.ca)
    rc, out = run_broker_until_exit(tmp_path, conf)
    assert rc == 3, out
    assert ("exit.conf:1: listener %s has 'cafile' but is not a TLS listener: add 'certfile' and "
            "'keyfile' (or 'psk_hint')." % conf.split()[1]) in out
