"""A PUBLISH larger than the broker's Maximum Packet Size (issue 8, item 15): midge_publish
refuses it with MIDGE_ERR_OVERSIZE_PACKET (libmosquitto: MOSQ_ERR_OVERSIZE_PACKET) once the
CONNACK told the limit; one queued before that CONNACK is dropped when it would go out, and
on_publish (reason 0x95), midge_wait_for_publish and midge_is_published say so."""

from client_helpers import run  # noqa: F401
from client_helpers import anybroker_factory, cbin  # noqa: F401  (fixtures)

OVERSIZE = -20
LIMIT = "max_packet_size 1000\n"


def test_publish_over_max_packet_size_is_refused(anybroker_factory, cbin):
    b = anybroker_factory(LIMIT)
    lines, _ = run([cbin("mgtest"), "-p", str(b.port), "-V", "5", "connect",
                    "pubbig", "big/t", "2000", "1",     # 2 kB: over the 1000-byte limit
                    "pubbig", "big/t", "900", "1",      # fits
                    "waitpub", "5000", "disconnect"])
    assert "connect rc=0" in lines
    pubs = [ln for ln in lines if ln.startswith("pub ")]
    assert pubs[0] == "pub err=%d" % OVERSIZE, lines
    assert pubs[1].startswith("pub mid="), lines
    assert "waitpub rc=0" in lines
    mid = int(pubs[1].split("=")[1])
    # 0x10 "No matching subscribers" is a success: nobody subscribed
    assert [ln for ln in lines if ln.startswith("on_publish")] == ["on_publish mid=%d rc=16" % mid]


def test_publish_queued_before_connack_dropped_and_reported(anybroker_factory, cbin):
    b = anybroker_factory(LIMIT)
    lines, _ = run([cbin("mgtest"), "-p", str(b.port), "-V", "5",
                    "pubbig", "big/t", "2000", "1",     # queued: no CONNACK yet, limit unknown
                    "ispub", "connect", "waitpub", "5000", "ispub", "disconnect"])
    assert "connect rc=0" in lines
    assert lines[0] == "pub mid=1", lines
    assert lines[1] == "ispub 0"
    assert "on_publish mid=1 rc=149" in lines     # 0x95 Packet too large
    assert "waitpub rc=%d" % OVERSIZE in lines
    assert lines[lines.index("waitpub rc=%d" % OVERSIZE) + 1] == "ispub 0"
