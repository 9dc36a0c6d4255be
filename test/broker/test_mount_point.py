"""mount_point (mosquitto.conf(5)): a listener's clients live under a topic prefix. The
broker adds it to every topic and filter such a client uses and strips it from what it sends
that client; clients of a plain listener see the full topic."""

import pytest

import mqtt_raw as m
from harness import assert_nothing_before_ping, free_port


@pytest.mark.mosquitto_xfail("2.0.11 sends the mounted client 'tenant/temp': the prefix its own "
                             "man page says 'is removed when any messages are sent to the "
                             "client' is not removed")
def test_mount_point_prefixes_and_strips(broker_factory):
    mport = free_port()
    b = broker_factory(extra=["listener %d 127.0.0.1" % mport, "mount_point tenant/"])
    plain = m.RawClient(b.port)
    plain.connect("mp-plain")
    plain.subscribe([("#", 0)])
    inside = m.RawClient(mport)
    inside.connect("mp-inside")
    inside.subscribe([("temp", 0), ("$share/g/room/+", 0)])

    # a mounted client's PUBLISH reaches the plain listener under the prefix
    inside.publish("temp", b"36.5")
    got = plain.recv_publish()
    assert (got.topic, got.payload) == ("tenant/temp", b"36.5")
    # ... and comes back to the mounted client itself without it
    got = inside.recv_publish()
    assert (got.topic, got.payload) == ("temp", b"36.5")

    # a plain client's PUBLISH under the prefix reaches the mounted client, stripped
    plain.publish("tenant/room/1", b"23")
    got = inside.recv_publish()
    assert (got.topic, got.payload) == ("room/1", b"23")
    assert plain.recv_publish().topic == "tenant/room/1"
    # outside the prefix: the mounted client sees nothing
    plain.publish("temp", b"x")
    assert plain.recv_publish().topic == "temp"
    assert_nothing_before_ping(plain, inside)
    plain.close()
    inside.close()
