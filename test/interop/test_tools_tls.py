"""midge_pub / midge_sub with TLS and passwords, against Debian's mosquitto (test/tlsbroker.py),
side by side with Debian's mosquitto_pub / mosquitto_sub 2.0.11: the same flags, the same
messages on stderr and the same exit status."""

import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from interop.tool_helpers import MOSQUITTO_PUB, MOSQUITTO_SUB, run, tool  # noqa: E402
from tlsbroker import PASSWORD, TlsBroker  # noqa: E402
from tlscerts import tls_certs  # noqa: E402,F401  (fixture)

# mosquitto's tools report a failed TLS handshake in one of two ways, by timing: from their
# connect call ("Unable to connect (...)", exit 1), or from their loop ("Error: ...", exit 8,
# MOSQ_ERR_TLS); which one depends on the machine's load. midge_pub always gives the second
# (its connection was made), midge_sub the first (mosquitto_sub gave it in every run we saw).
# A context that cannot be made (ciphers, key) is always the first.
TLS_FAIL = ("Unable to connect (A TLS error occurred.).\n", 1)
TLS_FAIL_PUB = ("Error: A TLS error occurred.\n", 8)
TLS_FAIL_MOSQ = (TLS_FAIL, TLS_FAIL_PUB)
HANDSHAKE_FAIL = {"pub": TLS_FAIL_PUB, "sub": TLS_FAIL}


@pytest.fixture(scope="module")
def tb(tmp_path_factory, tls_certs):
    """mosquitto: the broker of the side-by-side comparisons"""
    b = TlsBroker(str(tmp_path_factory.mktemp("tlsbroker")), tls_certs)
    yield b
    b.stop()


@pytest.fixture(scope="module")
def midge_tb(tmp_path_factory, tls_certs):
    b = TlsBroker(str(tmp_path_factory.mktemp("tlsbroker")), tls_certs, "midge")
    yield b
    b.stop()


@pytest.fixture(params=["mosquitto", "midge"])
def anytb(request, tb, midge_tb):
    return tb if request.param == "mosquitto" else midge_tb


def both(kind, args, env=None):
    """Run midge_<kind> and mosquitto_<kind> with args: [(stderr, rc) of midge, of mosquitto],
    mosquitto's program name in stderr replaced by midge's."""
    tail = ["-t", "tls/t", "-m", "x"] if kind == "pub" else ["-t", "tls/t", "-C", "1", "-W", "5"]
    res = []
    for exe in (tool("midge_" + kind), MOSQUITTO_PUB if kind == "pub" else MOSQUITTO_SUB):
        saved = dict(os.environ)
        if env:
            os.environ.update(env)
        try:
            rc, out, err = run([exe] + tail + [str(a) for a in args])
        finally:
            os.environ.clear()
            os.environ.update(saved)
        res.append((err.replace("mosquitto_" + kind, "midge_" + kind), rc))
    return res


def cases(c, port):
    """(name, args, expected (stderr, rc) or None for 'as mosquitto') for the error table."""
    return [
        ("cafile missing", ["-p", port, "--cafile", "/nonexistent/ca.crt"],
         ("Error: Problem setting TLS options: File not found.\n", 1)),
        ("cert without key", ["-p", port, "--cafile", c.ca, "--cert", c.client_cert], None),
        ("psk and cafile", ["-p", port, "--cafile", c.ca, "--psk", "00", "--psk-identity", "x"],
         None),
        ("psk without identity", ["-p", port, "--psk", "00"], None),
        ("psk not hex", ["-p", port, "--psk", "xyz", "--psk-identity", "x"],
         ("Error: Problem setting TLS-PSK options.\n", 1)),
        ("bad tls version", ["-p", port, "--cafile", c.ca, "--tls-version", "tlsv1"],
         ("Error: Problem setting TLS options, check the options are valid.\n", 1)),
        ("no value", ["-p", port, "--cafile"], None),
        ("no psk identity value", ["-p", port, "--psk-identity"], None),
        ("unknown ciphers", ["-p", port, "--cafile", c.ca, "--ciphers", "NO-SUCH-CIPHER"], TLS_FAIL),
        ("key of another cert", ["-p", port, "--cafile", c.ca, "--cert", c.client_cert,
                                 "--key", c.server_key], TLS_FAIL),
    ]


@pytest.mark.parametrize("kind", ["pub", "sub"])
def test_errors_as_mosquitto(tb, tls_certs, kind):
    for name, args, want in cases(tls_certs, tb.port["ca"]):
        mine, theirs = both(kind, args)
        assert mine == theirs, "%s: midge %r, mosquitto %r" % (name, mine, theirs)
        if want:
            assert mine == want, name


@pytest.mark.parametrize("kind", ["pub", "sub"])
@pytest.mark.parametrize("case", ["untrusted CA", "host name mismatch", "expired", "no capath"])
def test_failed_handshake_as_mosquitto(tb, tls_certs, kind, case):
    # (against mosquitto's broker; the libmidge tests check the same refusals against midge)
    c = tls_certs
    args = {"untrusted CA": ["-p", tb.port["ca"], "--cafile", c.wrong_ca],
            "host name mismatch": ["-p", tb.port["other"], "--cafile", c.ca],
            "expired": ["-p", tb.port["expired"], "--cafile", c.ca],
            "no capath": ["-p", tb.port["ca"], "--capath", "/nonexistent/capath"]}[case]
    mine, theirs = both(kind, args)
    assert mine == HANDSHAKE_FAIL[kind], mine
    assert theirs in TLS_FAIL_MOSQ, theirs


def roundtrip(tb, clients, sub_args, pub_args, topic="tls/rt"):
    """midge_sub gets what midge_pub sends (topic None: the arguments name it, -L)."""
    t = ["-t", topic] if topic else []
    s = clients([tool("midge_sub"), "-d", "-C", 1, "-W", 10] + t + sub_args)
    s.wait_subscribed()
    rc, out, err = run([tool("midge_pub"), "-m", "over tls"] + t + pub_args)
    assert rc == 0, err
    assert s.wait() == 0, s.err()
    assert s.payload_lines() == ["over tls"]


def test_cafile_username_password(anytb, tls_certs, clients):
    if anytb.port["passwd"] is None:
        pytest.skip("this midge does not take password_file / per_listener_settings yet")
    a = ["-p", anytb.port["passwd"], "--cafile", tls_certs.ca, "-u", "alice", "-P", PASSWORD]
    roundtrip(anytb, clients, a, a)


@pytest.mark.parametrize("kind", ["pub", "sub"])
def test_password_without_username_as_mosquitto(tb, tls_certs, kind):
    # 3.1.1 cannot carry a password without a user name; 5.0 can
    mine, theirs = both(kind, ["-p", tb.port["ca"], "--cafile", tls_certs.ca, "-P", "pw"])
    assert mine == theirs == ("Error: Problem setting username and/or password.\n", 1), \
        (mine, theirs)
    if kind == "pub":
        mine, theirs = both(kind, ["-p", tb.port["ca"], "--cafile", tls_certs.ca, "-P", "pw",
                                   "-V", "5"])
        assert mine == theirs == ("", 0), (mine, theirs)


def test_wrong_password_as_mosquitto(tb, tls_certs):
    for kind in ("pub", "sub"):
        mine, theirs = both(kind, ["-p", tb.port["passwd"], "--cafile", tls_certs.ca,
                                   "-u", "alice", "-P", "wrong"])
        assert mine == theirs
        assert mine[1] == 5, mine  # CONNACK 5, not authorised


def test_url_mqtts(tb, tls_certs, clients):
    url = "mqtts://alice:%s@localhost:%d/tls/url" % (PASSWORD, tb.port["passwd"])
    s = clients([tool("midge_sub"), "-d", "-L", url, "-C", 1, "-W", 10, "--cafile", tls_certs.ca])
    s.wait_subscribed()
    rc, out, err = run([tool("midge_pub"), "-L", url, "-m", "via mqtts", "--cafile", tls_certs.ca])
    assert rc == 0, err
    assert s.wait() == 0, s.err()
    assert s.payload_lines() == ["via mqtts"]
    # mqtts:// alone trusts the system's store, which does not know the test CA
    mine, theirs = both("pub", ["-L", url])
    assert mine == TLS_FAIL_PUB and theirs in TLS_FAIL_MOSQ, (mine, theirs)


def test_capath_and_client_certificate(anytb, tls_certs, clients):
    a = ["-p", anytb.port["reqcert"], "--capath", tls_certs.capath, "--cert", tls_certs.client_cert,
         "--key", tls_certs.client_key]
    roundtrip(anytb, clients, a, a)


def test_insecure_hostname_mismatch(anytb, tls_certs, clients):
    a = ["-p", anytb.port["other"], "--cafile", tls_certs.ca, "--insecure"]
    roundtrip(anytb, clients, a, a)


def test_psk(anytb, tls_certs, clients):
    a = ["-p", anytb.port["psk"], "--psk", tls_certs.psk_hex, "--psk-identity", tls_certs.psk_identity]
    roundtrip(anytb, clients, a, a + ["--tls-version", "tlsv1.2"])


def test_tls_use_os_certs(tb, tls_certs):
    # with SSL_CERT_FILE naming the test CA, the system store trusts it (OpenSSL's default
    # paths follow that variable): both tools connect, and without it both fail alike
    args = ["-p", tb.port["ca"], "--tls-use-os-certs"]
    mine, theirs = both("pub", args, env={"SSL_CERT_FILE": tls_certs.ca})
    assert mine == theirs == ("", 0), (mine, theirs)
    mine, theirs = both("pub", args)
    assert mine == TLS_FAIL_PUB and theirs in TLS_FAIL_MOSQ, (mine, theirs)


def test_url_mqtts_anonymous(anytb, tls_certs, clients):
    url = "mqtts://localhost:%d/tls/anon" % anytb.port["ca"]
    roundtrip(anytb, clients, ["-L", url, "--cafile", tls_certs.ca],
              ["-L", url, "--cafile", tls_certs.ca], topic=None)


@pytest.mark.parametrize("kind", ["pub", "sub"])
def test_help_lists_tls_flags(kind):
    rc, out, err = run([tool("midge_" + kind), "--help"])
    text = out.decode()
    for flag in ("--cafile", "--capath", "--cert", "--key", "--ciphers", "--insecure",
                 "--tls-version", "--tls-use-os-certs", "--psk", "--psk-identity", "mqtt[s]://",
                 "8883"):
        assert flag in text, flag


def connect_port(argv):
    """The port of the first connect(2) the program makes (strace), whatever answers there."""
    r = subprocess.run(["strace", "-f", "-e", "trace=connect", "-o", "/dev/stderr"] +
                       [str(a) for a in argv], capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    m = re.search(r"connect\(\d+, \{sa_family=AF_INET, sin_port=htons\((\d+)\)", r.stderr)
    assert m, r.stderr[-2000:]
    return int(m.group(1))


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace (scripts/install-deps)")
def test_default_port(tls_certs):
    # 8883 with a CA or a key, as mosquitto_pub; -L mqtt:// says 1883 whatever else is given
    cases = [([], 1883), (["--cafile", tls_certs.ca], 8883), (["--capath", tls_certs.capath], 8883),
             (["--psk", "00", "--psk-identity", "x"], 8883),
             (["-L", "mqtts://127.0.0.1/tls/p"], 8883),
             (["-L", "mqtt://127.0.0.1/tls/p", "--cafile", tls_certs.ca], 1883)]
    for args, port in cases:
        base = ["-h", "127.0.0.1", "-m", "x"] + ([] if "-L" in args else ["-t", "tls/p"])
        mine = connect_port([tool("midge_pub")] + base + args)
        theirs = connect_port([MOSQUITTO_PUB] + base + args)
        assert mine == theirs == port, (args, mine, theirs)


def test_forgotten_tls_flags_as_mosquitto(tb):
    # a plaintext client on a TLS port: the broker hangs up on the CONNECT it cannot read
    mine, theirs = both("pub", ["-p", tb.port["ca"]])
    assert mine == theirs == ("Error: The connection was lost.\n", 7), (mine, theirs)


def test_encrypted_key_asks_for_its_password(tb, tls_certs):
    # OpenSSL asks on the terminal, as for mosquitto_pub: with none (a new session, stdin
    # empty) both fail alike; on a terminal (script(1)) the right password connects
    args = ["-t", "tls/k", "-m", "x", "-p", tb.port["reqcert"], "--cafile", tls_certs.ca,
            "--cert", tls_certs.client_cert, "--key", tls_certs.client_key_enc]
    res = []
    for exe in (tool("midge_pub"), MOSQUITTO_PUB):
        r = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL, start_new_session=True)
        res.append((r.stderr, r.returncode))
    assert res[0] == res[1], res
    assert res[0][1] == 1 and "Unable to connect (A TLS error occurred.)." in res[0][0], res
    cmd = " ".join([tool("midge_pub")] + [str(a) for a in args])
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], input=tls_certs.key_password + "\n",
                       capture_output=True, text=True, timeout=30, start_new_session=True)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Enter PEM pass phrase:" in r.stdout


@pytest.mark.parametrize("case", ["untrusted CA", "host name mismatch", "expired"])
def test_debug_lines_of_a_refused_handshake_as_mosquitto(tb, tls_certs, case):
    c = tls_certs
    args = {"untrusted CA": ["-p", tb.port["ca"], "--cafile", c.wrong_ca],
            "host name mismatch": ["-p", tb.port["other"], "--cafile", c.ca],
            "expired": ["-p", tb.port["expired"], "--cafile", c.ca]}[case]
    argv = ["-d", "-t", "tls/d", "-m", "x"] + [str(a) for a in args]
    # mosquitto_pub prints "sending CONNECT" only when its handshake ends in its loop (timing,
    # see TLS_FAIL_MOSQ); libmidge queues the CONNECT before the handshake, so midge_pub always
    # does. The TLS lines after it must be the same.
    connect = "Client (null) sending CONNECT\n"
    rc, out, err = run([tool("midge_pub")] + argv)
    mine = out.decode()
    assert mine.startswith(connect) and "OpenSSL Error[0]: " in mine, mine
    rc, out, err = run([MOSQUITTO_PUB] + argv)
    theirs = out.decode()
    assert mine[len(connect):] == theirs[len(connect) if theirs.startswith(connect) else 0:], \
        (mine, theirs)
