"""Make a real mosquitto.db: Debian's mosquitto 2.0.11 with `persistence true`, clients that
leave retained messages, persistent 3.1.1 and 5.0 sessions with subscriptions, queued and
in-flight QoS 1/2 messages and an incoming QoS 2 message awaiting PUBREL; then SIGTERM, which
makes mosquitto write the file. What was left is returned as EXPECTED, so a test compares
what midge_db reads with what mosquitto was told, not with a file we wrote ourselves.

Run alone (`/usr/bin/python3 test/tools/mosq_state.py DIR`) it leaves DIR/mosquitto.db for
a look with `midge_db dump`.
"""

import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import mqtt_raw as m  # noqa: E402
import ports  # noqa: E402  (test/ports.py)

MOSQUITTO = "/usr/sbin/mosquitto"

# What the clients below leave in mosquitto, as midge_db should read it back.
EXPECTED = {
    "retained": {
        "r/plain": (b"hello", 1),
        "r/v5": (b"with props", 0),
    },
    "sessions": {
        # client id: (session expiry interval, {filter: (qos, options-without-qos, sub id)})
        "sub311": (0xFFFFFFFF, {"q/#": (2, 0, 0), "other/+": (1, 0, 0)}),
        "sub5": (3600, {"q/#": (1, 0x04, 7)}),
        "pub5": (3600, {}),
    },
    # the user name each client connected with (mosquitto 2.0 writes it in the client chunk)
    "usernames": {"sub311": "alice", "sub5": "bob", "pub5": None},
}


free_port = ports.free_port  # claimed across processes: test/ports.py


def start(workdir, port):
    conf = os.path.join(workdir, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
                "persistence_location %s/\npersistence_file mosquitto.db\n"
                "autosave_interval 0\n" % (port, workdir))
        if os.geteuid() == 0:
            f.write("user root\n")  # mosquitto would drop to `mosquitto`, who cannot write here
    log = open(os.path.join(workdir, "mosquitto.log"), "wb")
    p = subprocess.Popen([MOSQUITTO, "-c", conf, "-v"], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, cwd=workdir)
    log.close()
    deadline = time.monotonic() + 10
    while True:
        if p.poll() is not None:
            raise RuntimeError("mosquitto exited %s" % p.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return p
        except OSError:
            if time.monotonic() > deadline:
                p.kill()
                raise
            time.sleep(0.05)


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)


def sync(c):
    """A PINGREQ round trip: the broker has handled everything c sent before it."""
    c.send(m.pingreq())
    c.expect(m.PINGRESP)


def make_state(port):
    """Drives a running mosquitto into the state EXPECTED describes, plus queued messages.
    Returns the queued messages per client id: [(topic, payload, qos, state)] in order, state
    'queued', 'sent' (PUBLISH sent, no PUBACK/PUBREC) or 'pubrec' (PUBREC received)."""
    # retained: a plain one and a 5.0 one with properties
    pub = m.RawClient(port, version=4)
    pub.connect("rpub")
    pub.publish("r/plain", b"hello", qos=1, retain=True)
    pub.disconnect()
    p5 = m.RawClient(port, version=5)
    p5.connect("rpub5", version=5)
    p5.publish("r/v5", b"with props", qos=0, retain=True, version=5,
               properties=[(m.P_CONTENT_TYPE, "text/plain"), (m.P_USER_PROPERTY, ("k", "v"))])
    sync(p5)
    p5.disconnect()

    # persistent sessions
    s3 = m.RawClient(port, version=4)
    s3.connect("sub311", clean=False, username="alice")
    s3.subscribe([("q/#", 2), ("other/+", 1)])
    s5 = m.RawClient(port, version=5)
    s5.connect("sub5", version=5, clean=False, username="bob",
               properties=[(m.P_SESSION_EXPIRY, 3600)])
    s5.subscribe([("q/#", 1 | 0x04)], version=5, properties=[(m.P_SUBSCRIPTION_ID, 7)])

    publisher = m.RawClient(port, version=5)
    publisher.connect("pub5", version=5, clean=False, properties=[(m.P_SESSION_EXPIRY, 3600)])
    # in flight: sub311 gets q/1 (QoS 2) and PUBRECs it; sub5 gets q/1 (QoS 1) and never acks
    publisher.publish("q/1", b"one", qos=2, pid=1, version=5)
    p = s3.expect(m.PUBLISH)
    assert p.qos == 2
    s3.send(m.pubrec(p.pid))
    s3.expect(m.PUBREL)
    p = s5.expect(m.PUBLISH)
    assert p.qos == 1
    sync(s3)
    sync(s5)
    s3.close()
    s5.close()
    sync(publisher)
    # queued while both are offline
    publisher.publish("q/2", b"two", qos=1, pid=2, version=5,
                      properties=[(m.P_USER_PROPERTY, ("n", "2"))])
    publisher.publish("q/3", b"three", qos=2, pid=3, version=5)
    # incoming QoS 2 held for PUBREL: PUBREC received, PUBREL never sent
    publisher.send(m.publish("q/4", b"four", qos=2, pid=4, version=5))
    publisher.expect(m.PUBREC)
    sync(publisher)
    publisher.close()
    return {
        "sub311": [("q/1", b"one", 2, "pubrec"), ("q/2", b"two", 1, "queued"),
                   ("q/3", b"three", 2, "queued")],
        "sub5": [("q/1", b"one", 1, "sent"), ("q/2", b"two", 1, "queued"),
                 ("q/3", b"three", 1, "queued")],
    }


def write_mosquitto_db(workdir):
    """Runs mosquitto in workdir, makes the state, stops it. Returns (path, queued)."""
    port = free_port()
    p = start(workdir, port)
    try:
        queued = make_state(port)
    finally:
        stop(p)
    path = os.path.join(workdir, "mosquitto.db")
    assert os.path.getsize(path) > 0
    return path, queued


if __name__ == "__main__":
    d = os.path.abspath(sys.argv[1])
    os.makedirs(d, exist_ok=True)
    print(write_mosquitto_db(d)[0])
