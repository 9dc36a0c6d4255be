"""midge_connect_bind (libmosquitto's mosquitto_connect_bind, paho's bind_address; issue 8,
item 20): the connection comes from the given local address, which the broker logs as the
peer; an address this host does not have, or of the wrong family, fails the connect."""

import time

from client_helpers import run  # noqa: F401
from client_helpers import anybroker, cbin  # noqa: F401  (fixtures)

ERRNO = -10

def test_connect_bind_uses_the_local_address(anybroker, cbin):
    lines, _ = run([cbin("mgtest"), "-p", str(anybroker.port), "-i", "bound", "-b", "127.0.0.2",
                    "connect", "sub", "b/t", "1", "pub", "b/t", "x", "1", "0", "recv", "1", "5000",
                    "disconnect"])
    assert "connect rc=0" in lines and "recv 1" in lines
    # The broker wrote its "New client connected from 127.0.0.2:PORT as bound" line before the
    # CONNACK that connect waited for.
    log = open(anybroker.log).read()
    assert any("New client connected from 127.0.0.2:" in ln and " as bound" in ln
               for ln in log.splitlines()), log

def test_connect_bind_to_an_address_not_here_fails(anybroker, cbin):
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): on no interface of this host.
    lines, _ = run([cbin("mgtest"), "-p", str(anybroker.port), "-b", "192.0.2.1", "connect"])
    assert lines[0] == "connect rc=%d" % ERRNO
    # An IPv6 local address for an IPv4 broker address: no address of that family.
    lines, _ = run([cbin("mgtest"), "-p", str(anybroker.port), "-b", "::1", "connect"])
    assert lines[0] == "connect rc=%d" % ERRNO
