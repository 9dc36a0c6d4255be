"""Interop with paho-mqtt (Debian's python3-paho-mqtt, 1.6 API) through mosquitto: a paho
subscriber receives what libmidge publishes and libmidge receives what paho publishes, in
3.1.1 and 5.0 with properties. Also the lecture's threaded shape under ThreadSanitizer."""

import subprocess
import textwrap

import pytest

from client_helpers import PY, run  # noqa: F401
from client_helpers import mosq, mosq_factory, cbin, spawn, fake  # noqa: F401  (fixtures)

PAHO_SUB = textwrap.dedent("""
    import sys, time
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    port, version, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
    got = []
    def on_message(c, u, m):
        line = "paho %s %d %d %s" % (m.topic, m.qos, int(m.retain), m.payload.decode())
        p = getattr(m, "properties", None)
        if version == 5 and p is not None:
            for name in ("ContentType", "ResponseTopic", "CorrelationData", "UserProperty",
                         "PayloadFormatIndicator"):
                if hasattr(p, name):
                    line += " %s=%s" % (name, getattr(p, name))
        print(line, flush=True)
        got.append(m)
    def on_subscribe(*a):
        print("subscribed", flush=True)
    c = mqtt.Client(client_id="paho-sub", protocol=proto)
    c.on_message = on_message
    c.on_subscribe = on_subscribe
    c.connect("127.0.0.1", port, 30)
    c.subscribe("interop/#", 2)
    end = time.time() + 15
    while len(got) < n and time.time() < end:
        c.loop(0.1)
    c.disconnect()
    print("paho got %d" % len(got), flush=True)
""")

PAHO_PUB = textwrap.dedent("""
    import sys
    import paho.mqtt.client as mqtt
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    port, version = int(sys.argv[1]), int(sys.argv[2])
    proto = mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311
    c = mqtt.Client(client_id="paho-pub", protocol=proto)
    c.connect("127.0.0.1", port, 30)
    c.loop_start()
    props = None
    if version == 5:
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        props.ResponseTopic = "interop/reply"
        props.CorrelationData = b"xyz"
        props.UserProperty = [("k", "v")]
    for q in (0, 1, 2):
        c.publish("interop/q%d" % q, "from paho %d" % q, qos=q, properties=props).wait_for_publish()
    c.disconnect()
    c.loop_stop()
""")


@pytest.mark.parametrize("version", [4, 5])
def test_paho_receives_from_midge(mosq, cbin, spawn, tmp_path, version):
    script = tmp_path / "paho_sub.py"
    script.write_text(PAHO_SUB)
    sub = spawn([PY, str(script), str(mosq.port), str(version), "4"])
    sub.expect("subscribed")
    run([cbin("mgtest"), "-p", str(mosq.port), "-V", str(version), "connect",
         "pub", "interop/a", "q0", "0", "0", "pub", "interop/b", "q1", "1", "0",
         "pub", "interop/c", "q2", "2", "1"] +
        (["pubprops", "interop/p", "props", "1"] if version == 5 else
         ["pub", "interop/p", "props", "1", "0"]) +
        ["waitpub", "5000", "disconnect"])
    sub.expect("paho got 4")
    assert sub.finish()[0] == 0
    # four topics: the spec orders messages per topic only, so sort
    msgs = sorted(ln for ln in sub.lines if ln.startswith("paho interop"))
    assert msgs[:3] == ["paho interop/a 0 0 q0", "paho interop/b 1 0 q1", "paho interop/c 2 0 q2"]
    if version == 5:
        assert msgs[3].startswith("paho interop/p 1 0 props ContentType=text/plain "
                                  "ResponseTopic=resp/t CorrelationData=b'corr-01' "
                                  "UserProperty=[('a', '1'), ('b', '2')]"), msgs[3]
        assert "PayloadFormatIndicator=1" in msgs[3]
    else:
        assert msgs[3] == "paho interop/p 1 0 props"


@pytest.mark.parametrize("version", [4, 5])
def test_midge_receives_from_paho(mosq, cbin, spawn, tmp_path, version):
    script = tmp_path / "paho_pub.py"
    script.write_text(PAHO_PUB)
    c = spawn([cbin("mgtest"), "-p", str(mosq.port), "-V", str(version), "connect",
               "sub", "interop/#", "2", "recv", "3", "15000", "disconnect"])
    c.expect("on_subscribe")
    subprocess.run([PY, str(script), str(mosq.port), str(version)], check=True, timeout=30)
    c.expect("recv 3")
    assert c.finish()[0] == 0
    msgs = sorted(ln for ln in c.lines if ln.startswith("msg "))
    assert len(msgs) == 3
    for q, ln in enumerate(msgs):
        want = "msg topic=interop/q%d qos=%d retain=0 dup=0 len=11 payload=from paho %d" % (q, q, q)
        if version == 5:
            want += " ct=application/json rt=interop/reply cd=xyz user:k=v"
        assert ln == want


@pytest.mark.threaded
@pytest.mark.parametrize("version", [4, 5])
def test_loop_start_publish_from_main_thread(mosq, cbin, version):
    """The lecture's sensor: callbacks in the loop thread, publishes from the main thread and a
    second thread at once (built with -fsanitize=thread when MIDGE_BUILD is a tsan build)."""
    lines, _ = run([cbin("threaded"), str(mosq.port), str(version), "300"], timeout=120)
    assert "connect rc=0" in lines
    assert "received 600" in lines and "published 900" in lines
    assert "ok" in lines


@pytest.mark.threaded
@pytest.mark.parametrize("version", [4, 5])
def test_wait_for_publish_returns_after_on_publish(mosq, cbin, version):
    """With the loop in the loop_start thread, midge_wait_for_publish returns only after
    on_publish for that mid has returned (paho's order), at QoS 0, 1 and 2: on_publish sleeps
    200 ms before it records the mid, so a wait that returned early sees the wrong one."""
    lines, _ = run([cbin("waitcb"), str(mosq.port), str(version)], timeout=60)
    assert lines[-3:] == ["ok qos0", "ok qos1", "ok qos2"], lines
