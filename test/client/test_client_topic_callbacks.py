"""Per-topic message callbacks (paho's message_callback_add / _remove) and message copies
(libmosquitto's mosquitto_message_copy / _free), against midge and mosquitto (issue 8,
item 20)."""

import pytest

from client_helpers import run  # noqa: F401
from client_helpers import anybroker, cbin  # noqa: F401  (fixtures)


@pytest.mark.parametrize("version", [4, 5])
def test_message_callback_add_remove_and_copy(anybroker, cbin, version):
    lines, _ = run([cbin("topiccb"), "-p", str(anybroker.port), "-V", str(version)])
    assert lines[:3] == ["add rc=0", "add rc=0", "add bad rc=-14"]
    body = [ln for ln in lines[3:] if not ln.startswith("copy")]
    assert body == [
        "A a/x q1 one", "-- a/x 1",
        "A a/b/c q1 two", "B a/b/c q1 two", "-- a/b/c 2",
        "M b q1 three", "-- b 1",
        "A a/q/c q2 four", "B a/q/c q2 four", "-- a/q/c 2",
        "remove rc=0", "remove again rc=-11",
        "B a/b/c q1 five", "-- a/b/c 1",
        "M a/x q1 six", "-- a/x 1",
        "done"]
    user = " ct=text/plain user:k=v" if version == 5 else ""
    copies = [ln for ln in lines if ln.startswith("copy")]
    # copies outlive the callback and the client; the 5.0 properties come along
    assert copies == [
        "copy a/x q1 len=3 one" + user,
        "copy a/b/c q1 len=3 two", "copy b q1 len=5 three", "copy a/q/c q2 len=4 four",
        "copy a/x q1 len=3 six"]
