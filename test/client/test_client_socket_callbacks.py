"""Socket callbacks for external event loops (paho's on_socket_open / close /
register_write / unregister_write; issue 8, item 20). test/client/c/extcb.c runs its own poll
loop that knows only what these callbacks told it: connect, subscribe, 50 QoS 1 messages to
itself and a disconnect go through, and every callback comes once and in order."""

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import anybroker, cbin  # noqa: F401  (fixtures)


@pytest.mark.parametrize("version", [4, 5])
def test_event_loop_driven_by_socket_callbacks(anybroker, cbin, version):
    lines, _ = run([cbin("extcb"), "-p", str(anybroker.port), "-V", str(version)], timeout=60)
    s = dict(kv.split("=") for kv in lines[-1].split())
    assert s["bad"] == "0", lines
    assert s["msgs"] == "50" and s["published"] == "50", lines
    assert s["open"] == "1" and s["close"] == "1" and s["closed_before_free"] == "1", lines
    # write interest came and went at least for CONNECT, SUBSCRIBE, the PUBLISHes and
    # DISCONNECT, and ended unregistered
    assert int(s["reg"]) >= 3 and s["reg"] == s["unreg"], lines
