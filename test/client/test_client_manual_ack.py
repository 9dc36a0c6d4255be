"""Manual acknowledgements (paho 2's manual_ack_set / ack; issue 8, item 20): the PUBACK of a
QoS 1 message and the PUBCOMP of a QoS 2 message go out when the program calls midge_ack, not
when on_message returns. Checked on the wire with a scripted broker (the ack comes after a
PUBLISH the program sends later, so it cannot have been sent automatically), and against midge
and mosquitto: an unacknowledged message comes again after a reconnect, an acknowledged one
does not."""

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import anybroker, cbin, spawn, fake  # noqa: F401  (fixtures)
import mqtt_raw as raw


def publish(topic, payload, qos, pid):
    body = len(topic).to_bytes(2, "big") + topic + pid.to_bytes(2, "big") + payload
    return bytes([0x30 | qos << 1]) + raw.varint(len(body)) + body


def test_manual_ack_on_the_wire(fake, cbin, spawn):
    c = spawn([cbin("mgtest"), "-p", str(fake.port), "-M", "connect", "recv", "2", "5000",
               "pub", "sync", "1", "0", "0", "ack", "7", "1", "ack", "9", "2",
               "loop", "300", "disconnect"])
    conn = fake.accept(4)
    conn.expect(raw.CONNECT)
    conn.send(bytes([0x20, 2, 0, 0]))
    conn.send(publish(b"t", b"m1", 1, 7))
    conn.send(publish(b"t", b"m2", 2, 9))
    rec = conn.expect(raw.PUBREC)                     # PUBREC stays automatic
    assert rec.pid == 9
    conn.send(bytes([0x62, 2, 0, 9]))                 # PUBREL 9: delivered now
    c.expect("manual mid=9 qos=2")
    # Nothing acknowledged yet: the next packet is the program's own later PUBLISH.
    p = conn.expect(raw.PUBLISH)
    assert p.topic == "sync"
    ack = conn.expect(raw.PUBACK)
    assert ack.raw == bytes([0x40, 2, 0, 7])
    comp = conn.expect(raw.PUBCOMP)
    assert comp.raw == bytes([0x70, 2, 0, 9])
    conn.expect(raw.DISCONNECT)
    c.finish()
    assert "manual mid=7 qos=1" in c.lines
    assert c.lines.count("ack rc=0") == 2


def test_unacked_message_is_sent_again_acked_is_not(anybroker, cbin):
    port = str(anybroker.port)
    m = cbin("mgtest")
    # Session kept (-n); the message is received but not acknowledged.
    run([m, "-p", port, "-i", "mack", "-n", "-M", "connect", "sub", "mack/t", "1",
         "loop", "300", "pub", "mack/t", "hello", "1", "0", "recv", "1", "5000", "disconnect"])
    # Back again: the broker sends it again (DUP); this time it is acknowledged.
    lines, _ = run([m, "-p", port, "-i", "mack", "-n", "-M", "connect", "recv", "1", "5000",
                    "ackall", "pub", "mack/t", "sentinel", "1", "0", "recv", "2", "5000",
                    "ackall", "disconnect"])
    msgs = [ln for ln in lines if ln.startswith("msg ")]
    assert msgs[0].startswith("msg topic=mack/t qos=1 retain=0 dup=1") and "payload=hello" in msgs[0]
    assert "payload=sentinel" in msgs[1]
    # Acknowledged: the third session gets only what is published now.
    lines, _ = run([m, "-p", port, "-i", "mack", "-n", "-M", "connect",
                    "pub", "mack/t", "last", "1", "0", "recv", "1", "5000", "ackall",
                    "disconnect"])
    msgs = [ln for ln in lines if ln.startswith("msg ")]
    assert len(msgs) == 1 and "payload=last" in msgs[0], lines


@pytest.mark.threaded
def test_ack_from_the_main_thread_while_loop_start_runs(anybroker, cbin):
    port = str(anybroker.port)
    m = cbin("mgtest")
    # on_message runs in the loop_start thread; midge_ack comes from the main thread.
    lines, _ = run([m, "-p", port, "-i", "mack2", "-n", "-M", "start", "connect",
                    "sub", "mack2/t", "1", "loop", "300", "pub", "mack2/t", "one", "1", "0",
                    "recv", "1", "5000", "ackall", "disconnect", "stop"])
    assert "ack rc=0" in lines
    # acknowledged: not sent again to the kept session
    lines, _ = run([m, "-p", port, "-i", "mack2", "-n", "-M", "connect",
                    "pub", "mack2/t", "two", "1", "0", "recv", "1", "5000", "ackall",
                    "disconnect"])
    msgs = [ln for ln in lines if ln.startswith("msg ")]
    assert len(msgs) == 1 and "payload=two" in msgs[0], lines
