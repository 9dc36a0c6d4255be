"""midge_pub / midge_sub with -L ws://host:port/path: MQTT over WebSockets, against Debian's
mosquitto 2.0.11 (built with libwebsockets; it gets a plain listener too, as it will not
start with a WebSockets listener alone) and against midge."""

import socket
import time

import pytest

from interop.tool_helpers import BROKER_KINDS, MOSQUITTO_PUB, free_port, run, tool


@pytest.fixture(params=BROKER_KINDS)
def wsb(request, broker_of):
    port = free_port()
    b = broker_of(request.param, ["listener %d 127.0.0.1" % port, "protocol websockets"])
    for _ in range(200):  # opened after the plain listener the fixture waited for
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.05)
    b.ws_port = port
    return b


def test_pub_and_sub_over_websockets(wsb, clients):
    url = "ws://127.0.0.1:%d/mqtt" % wsb.ws_port
    s = clients([tool("midge_sub"), "-L", url, "-t", "ws/tools/#", "-C", 2, "-d", "-v", "-W", 10])
    s.wait_subscribed()
    rc, _, err = run([tool("midge_pub"), "-L", url, "-t", "ws/tools/a", "-m", "over ws", "-q", 1])
    assert rc == 0, err
    # a plain MQTT publisher reaches the WebSockets subscriber: one broker, two transports
    plain = [tool("midge_pub"), "-p", wsb.port] if wsb.kind == "midge" else [MOSQUITTO_PUB, "-p", wsb.port]
    rc, _, err = run(plain + ["-h", "127.0.0.1", "-t", "ws/tools/b", "-m", "over tcp"])
    assert rc == 0, err
    assert s.wait() == 0, s.err()
    assert s.payload_lines() == ["ws/tools/a over ws", "ws/tools/b over tcp"]


def test_url_without_path_and_default_port(wsb, clients):
    """No path: /mqtt (paho's default); any path works on both brokers."""
    s = clients([tool("midge_sub"), "-L", "ws://127.0.0.1:%d" % wsb.ws_port, "-t", "ws/np",
                 "-C", 1, "-d", "-W", 10])
    s.wait_subscribed()
    rc, _, err = run([tool("midge_pub"), "-L", "ws://127.0.0.1:%d/any/where" % wsb.ws_port,
                      "-t", "ws/np", "-m", "p"])
    assert rc == 0, err
    assert s.wait() == 0 and s.payload_lines() == ["p"]


def test_ws_url_to_a_plain_mqtt_port_fails_with_a_reason(wsb):
    rc, out, err = run([tool("midge_pub"), "-L", "ws://127.0.0.1:%d/mqtt" % wsb.port, "-t", "x",
                        "-m", "y", "-d"], timeout=20)
    assert rc == 1
    assert err == "Error: A network protocol error occurred when communicating with the broker.\n"
    assert b"WebSocket handshake with 127.0.0.1:%d failed" % wsb.port in out, out
