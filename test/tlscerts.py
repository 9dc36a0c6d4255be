"""Certificates for the TLS tests, made at test time with the openssl command line (nothing
secret is committed). One set per pytest session: import the fixture by name,

    from tlscerts import tls_certs          # noqa: F401  (the session-scoped fixture)

    def test_x(tls_certs):
        tls_certs.ca, tls_certs.server_cert, tls_certs.server_key, ...

or call make_certs(directory) outside pytest. Every path is absolute. EC P-256 keys: a set
takes well under a second on a busy machine (RSA 2048 would take several).

What is made (all but the wrong_* ones signed by `ca`):
  ca, ca_key                      the test CA ("midge test CA")
  capath                          a directory holding ca under its subject-hash name (-capath)
  server_cert, server_key         CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1
  other_cert, other_key           a server cert for otherhost.invalid only (hostname mismatch)
  expired_cert, expired_key       a server cert valid only in 2020 (SAN as server_cert)
  client_cert, client_key         CN=client1 (use_identity_as_username: "client1")
  client_key_enc                  client_key encrypted with KEY_PASSWORD (AES-256)
  expired_client_cert, expired_client_key  CN=client1, a client cert valid only in 2020
  revoked_cert, revoked_key       CN=revoked, revoked in crl
  crl                             the CA's CRL, listing revoked_cert
  wrong_ca, wrong_ca_key          a second CA that nobody trusts
  wrong_server_cert, wrong_server_key, wrong_client_cert, wrong_client_key  signed by wrong_ca
  psk_identity, psk_hex           a TLS-PSK identity and key (hex), and psk_file: a mosquitto
                                  psk_file line "identity:hex" for it
"""

import os
import subprocess
import types

import pytest

KEY_PASSWORD = "midge-key-pass"
OPENSSL = "openssl"

_CA_CONF = """\
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {d}
database = {d}/index.txt
serial = {d}/serial
crlnumber = {d}/crlnumber
new_certs_dir = {d}/newcerts
certificate = {cert}
private_key = {key}
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = any
unique_subject = no
copy_extensions = copy
[ any ]
commonName = supplied
[ server_ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {san}
[ client_ext ]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
"""


def _run(args, cwd):
    r = subprocess.run([OPENSSL] + args, cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr))


def _key(d, name):
    path = os.path.join(d, name + ".key")
    _run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path], d)
    return path


class _CA:
    """A CA made with `openssl ca`, so it can sign with chosen dates, revoke and issue a CRL."""

    def __init__(self, d, name, cn):
        self.d = os.path.join(d, name + ".db")
        os.makedirs(os.path.join(self.d, "newcerts"))
        open(os.path.join(self.d, "index.txt"), "w").close()
        with open(os.path.join(self.d, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(self.d, "crlnumber"), "w") as f:
            f.write("1000\n")
        self.key = _key(d, name)
        self.cert = os.path.join(d, name + ".crt")
        _run(["req", "-new", "-x509", "-key", self.key, "-out", self.cert, "-days", "3650",
              "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)
        self.workdir = d

    def _conf(self, san):
        path = os.path.join(self.d, "ca.conf")
        with open(path, "w") as f:
            f.write(_CA_CONF.format(d=self.d, cert=self.cert, key=self.key, san=san))
        return path

    def sign(self, name, cn, ext, san="DNS:localhost", start=None, end=None):
        key = _key(self.workdir, name)
        csr = os.path.join(self.d, name + ".csr")
        cert = os.path.join(self.workdir, name + ".crt")
        _run(["req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn], self.workdir)
        args = ["ca", "-batch", "-notext", "-config", self._conf(san), "-extensions", ext,
                "-in", csr, "-out", cert]
        if start:
            args += ["-startdate", start, "-enddate", end]
        _run(args, self.workdir)
        return cert, key

    def revoke(self, cert):
        _run(["ca", "-config", self._conf("DNS:localhost"), "-revoke", cert], self.workdir)

    def crl(self, path):
        _run(["ca", "-config", self._conf("DNS:localhost"), "-gencrl", "-out", path], self.workdir)
        return path


def make_certs(d):
    """Make the whole set in directory d (created if missing); returns a namespace of paths."""
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    c = types.SimpleNamespace(dir=d, key_password=KEY_PASSWORD)
    ca = _CA(d, "ca", "midge test CA")
    c.ca, c.ca_key = ca.cert, ca.key
    local = "DNS:localhost,IP:127.0.0.1,IP:::1"
    c.server_cert, c.server_key = ca.sign("server", "localhost", "server_ext", local)
    c.other_cert, c.other_key = ca.sign("other", "otherhost.invalid", "server_ext",
                                        "DNS:otherhost.invalid")
    c.expired_cert, c.expired_key = ca.sign("expired", "localhost", "server_ext", local,
                                            start="20200101000000Z", end="20200102000000Z")
    c.client_cert, c.client_key = ca.sign("client", "client1", "client_ext")
    c.client_key_enc = os.path.join(d, "client-enc.key")
    _run(["pkey", "-in", c.client_key, "-aes256", "-passout", "pass:" + KEY_PASSWORD,
          "-out", c.client_key_enc], d)
    c.expired_client_cert, c.expired_client_key = ca.sign(
        "expired-client", "client1", "client_ext", start="20200101000000Z", end="20200102000000Z")
    c.revoked_cert, c.revoked_key = ca.sign("revoked", "revoked", "client_ext")
    ca.revoke(c.revoked_cert)
    c.crl = ca.crl(os.path.join(d, "crl.pem"))

    wrong = _CA(d, "wrong-ca", "untrusted test CA")
    c.wrong_ca, c.wrong_ca_key = wrong.cert, wrong.key
    c.wrong_server_cert, c.wrong_server_key = wrong.sign("wrong-server", "localhost",
                                                         "server_ext", local)
    c.wrong_client_cert, c.wrong_client_key = wrong.sign("wrong-client", "client1", "client_ext")

    # -capath: the CA under its subject hash, as c_rehash / openssl rehash would name it
    c.capath = os.path.join(d, "capath")
    os.makedirs(c.capath)
    h = subprocess.run([OPENSSL, "x509", "-hash", "-noout", "-in", c.ca], capture_output=True,
                       text=True, check=True).stdout.strip()
    with open(c.ca) as src, open(os.path.join(c.capath, h + ".0"), "w") as dst:
        dst.write(src.read())

    c.psk_identity = "midge-psk-client"
    c.psk_hex = "0123456789abcdef0123456789abcdef"
    c.psk_file = os.path.join(d, "psk.txt")
    with open(c.psk_file, "w") as f:
        f.write("%s:%s\n" % (c.psk_identity, c.psk_hex))
    return c


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory):
    """The certificate set of this pytest session (see the module's docstring)."""
    return make_certs(str(tmp_path_factory.mktemp("tlscerts")))
