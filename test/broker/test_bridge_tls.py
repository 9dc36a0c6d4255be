"""Bridges inside midge over TLS (issue 12): bridge_cafile / bridge_certfile / bridge_keyfile
with a client certificate, bridge_identity / bridge_psk, the remote's host name checked (and
not with bridge_insecure). net/tls.c's client side on the bridge's worker loop."""

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
