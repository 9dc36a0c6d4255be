"""Message ids (issue 8, items 16 and 17): a mid is a handle of its own (1..INT_MAX), not the
MQTT packet id, so the outbound queue needs no packet id per waiting message and has no bound
by default (paho's behaviour); a mid is never handed out again while its on_publish is still
to come, so on_publish(mid) always means the message midge_publish returned mid for."""

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import anybroker, cbin  # noqa: F401  (fixtures)

N = 36000  # twice: 72,000 messages, more than the 65,535 packet ids


def summary(lines):
    out = {}
    for ln in lines:
        w = ln.split()
        if w and w[0] in ("published", "on_publish", "sub"):
            out[w[0]] = dict(kv.split("=") for kv in w[1:] if "=" in kv)
    return out


@pytest.mark.parametrize("version,qos,inflight", [
    (4, 1, 20),      # the default window: 72,000 messages wait in the queue
    (4, 1, 0),       # no window: 65,535 packet ids in flight at once, the rest wait for one
    (5, 1, 0),       # no window of ours; the broker's Receive Maximum bounds it instead
    (4, 2, 20),
    (4, 0, 20),
])
def test_72000_queued_messages_all_delivered_no_mid_reused(anybroker, cbin, version, qos, inflight):
    lines, _ = run([cbin("pubmany"), "-p", str(anybroker.port), "-V", str(version),
                    "-I", str(inflight), str(N), str(qos)], timeout=240)
    s = summary(lines)
    pub = lines[[i for i, ln in enumerate(lines) if ln.startswith("published")][0]].split()
    assert pub == ["published", str(2 * N), "distinct", str(2 * N), "errors", "0"], lines
    assert s["on_publish"] == {"n": str(2 * N), "unknown": "0", "twice": "0",
                               "failed": "0"}, lines
    assert s["sub"]["distinct"] == "1" and s["sub"]["on_subscribe"] == "1", lines
