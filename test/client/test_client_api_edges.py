"""Edges of the API a paho user meets (issue 8, items 18 and 19): midge_subscribe_ex's 5.0
options on a 3.1.1 connection send only the QoS, as the header says; midge_disconnect on a
client that is not connected is an error that changes nothing."""

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import anybroker, cbin, spawn, fake  # noqa: F401  (fixtures)
import mqtt_raw as raw

OPTS = "0x0d"  # QoS 1 | No Local | Retain As Published


@pytest.mark.parametrize("version", [3, 4])
def test_subscribe_ex_v311_sends_qos_only(fake, cbin, spawn, version):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-V", str(version), "connect",
               "subopt", "a/b", OPTS, "loop", "500", "disconnect"])
    conn = fake.accept(version)
    conn.expect(raw.CONNECT)
    conn.send(bytes([0x20, 2, 0, 0]))
    p = conn.expect(raw.SUBSCRIBE)
    # packet id 1, topic "a/b", then the requested QoS byte alone [MQTT-3.8.3-4]
    assert p.flags == 2
    assert p.body == bytes([0, 1, 0, 3]) + b"a/b" + bytes([1])
    conn.send(bytes([0x90, 3, 0, 1, 1]))
    c.expect("on_subscribe mid=1 n=1 1")
    conn.expect(raw.DISCONNECT)
    c.finish()
    assert "subopt rc=1" in c.lines


def test_subscribe_ex_v311_against_brokers(anybroker, cbin):
    lines, _ = run([cbin("mgtest"), "-p", str(anybroker.port), "-V", "4", "connect",
                    "subopt", "a/b", OPTS, "pub", "a/b", "hello", "1", "0", "recv", "1", "5000",
                    "disconnect"])
    assert "subopt rc=1" in lines
    assert "on_subscribe mid=1 n=1 1" in lines
    # No Local was not sent: our own message comes back
    assert any(ln.startswith("msg topic=a/b qos=1") and "payload=hello" in ln for ln in lines)


def test_disconnect_when_not_connected_does_not_stop_a_later_loop_forever(fake, cbin, spawn):
    # The broker drops the first connection; midge_disconnect while not connected is an
    # error, and must not keep loop_forever from reconnecting. The second connection's first
    # message disconnects from on_message (-C 1), which ends loop_forever.
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-C", "1", "disconnect", "connect",
               "loop", "3000", "disconnect", "forever"])
    conn = fake.accept(4)
    conn.expect(raw.CONNECT)
    conn.send(bytes([0x20, 2, 0, 0]))
    c.expect("connect rc=0")
    conn.sock.close()                                   # connection lost
    c.expect("on_disconnect flags=0 rc=-5")
    c.expect("disconnect rc=-3")                        # not connected: an error
    conn2 = fake.accept(4)                              # loop_forever reconnects
    conn2.expect(raw.CONNECT)
    conn2.send(bytes([0x20, 2, 0, 0]))
    conn2.send(bytes([0x30, 5, 0, 1]) + b"tok")         # PUBLISH QoS 0 "t" "ok"
    c.expect("disconnect-in-callback rc=0")
    conn2.expect(raw.DISCONNECT)
    c.expect("forever rc=0")
    c.finish()
    assert c.lines[0] == "disconnect rc=-3"             # never connected: MIDGE_ERR_NO_CONN


def test_write_to_a_closed_socket_is_a_lost_connection_not_sigpipe(anybroker, cbin):
    # A QoS 0 PUBLISH waits in the output buffer; the socket is shut down under the library;
    # the program's own loop calls midge_loop_write. The write fails with EPIPE: the library
    # must report a lost connection, not let SIGPIPE kill the program (writev(2) raises it;
    # libmosquitto and paho.mqtt.c write with MSG_NOSIGNAL).
    lines, rc = run([cbin("mgtest"), "-p", str(anybroker.port), "connect",
                     "pub", "t", "x", "0", "0", "abort", "loopwrite"], check=False)
    assert rc == 0, "exit %d: %s" % (rc, lines)
    assert "loopwrite rc=-5" in lines          # MIDGE_ERR_CONN_LOST
    assert "on_disconnect flags=0 rc=-5" in lines
    assert lines[-1] == "done"
