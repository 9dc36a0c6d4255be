"""midge_pub / midge_sub side by side with Debian's mosquitto_pub / mosquitto_sub: the same
flags against the same broker must give the same output (-d lines, -F formats) and the same
exit status. Only broker-assigned client ids (MQTT 5) may differ, and are normalised.
"""

import re

import pytest

from interop.tool_helpers import (MOSQUITTO_PUB, MOSQUITTO_SUB, MOSQUITTO_SUB_LB, free_port,
                                  run, tool)

ASSIGNED_ID = re.compile(r"^Client (?!\(null\))\S+ ", re.M)


def norm(text):
    """Broker-assigned ids ("auto-1F2E...") differ from run to run and broker to broker."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return ASSIGNED_ID.sub("Client ID ", text)


def side_by_side(clients, broker, sub_args, publish, count_subs=2):
    """Starts mosquitto_sub and midge_sub with the same arguments (plus -d to wait for their
    SUBACK), runs publish(), waits for both to exit; returns (mosquitto's, midge's) stdout."""
    m = clients(MOSQUITTO_SUB_LB + ["-p", broker.port] + sub_args)
    g = clients([tool("midge_sub"), "-p", broker.port] + sub_args)
    for c in (m, g):
        c.wait_out(r"^Subscribed \(mid: ")
    publish()
    rc_m, rc_g = m.wait(), g.wait()
    assert rc_m == rc_g == 0, (rc_m, rc_g, m.err(), g.err())
    return m.out(), g.out()


def mpub(broker, *args):
    rc, out, err = run([MOSQUITTO_PUB, "-p", broker.port] + [str(a) for a in args])
    assert rc == 0, err


# At QoS 2 both libraries hand the message to on_message when its PUBREL arrives, so the
# payload is printed after "sending PUBCOMP".
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_sub_debug_output_matches(any_broker, clients, qos):
    args = ["-d", "-t", "temp", "-t", "a/#", "-q", str(qos), "-C", "3", "-W", "10"]

    def publish():
        mpub(any_broker, "-t", "temp", "-m", "abcd", "-q", qos)
        mpub(any_broker, "-t", "a/b", "-m", "xyz", "-q", qos, "-r")
        mpub(any_broker, "-t", "temp", "-n", "-q", qos)

    want, got = side_by_side(clients, any_broker, args, publish)
    if qos < 2:
        assert got == want
        return
    # At QoS 2 where the broker's PUBREL for one message falls beside the next PUBLISH is a
    # matter of scheduling (for mosquitto_sub too): the same lines; per message id the same
    # lines in the same order; the payloads in the same order.
    wl, gl = want.splitlines(), got.splitlines()
    assert sorted(gl) == sorted(wl), (got, want)
    for mid in range(1, 4):
        pat = re.compile(r"[( ](m|Mid: )%d[,)]" % mid)
        assert [l for l in gl if pat.search(l)] == [l for l in wl if pat.search(l)], (got, want)
    assert [l for l in gl if not l.startswith("Client ")] == \
        [l for l in wl if not l.startswith("Client ")], (got, want)


def test_sub_debug_output_matches_v5(any_broker, clients):
    args = ["-d", "-V", "5", "-t", "temp", "-q", "1", "-C", "1", "-v", "-W", "10"]
    want, got = side_by_side(clients, any_broker, args,
                             lambda: mpub(any_broker, "-t", "temp", "-m", "23", "-q", 1))
    assert norm(got) == norm(want)
    assert "Client (null) sending CONNECT\n" in got


# -E disconnects in on_subscribe; then neither library handles a further packet, even the
# UNSUBACKs already read in the same buffer.
def test_sub_debug_unsubscribe_matches(any_broker):
    outs = []
    for exe in (MOSQUITTO_SUB, tool("midge_sub")):
        rc, out, err = run([exe, "-p", any_broker.port, "-d", "-t", "x", "-U", "y", "-U", "z",
                            "-E"])
        assert rc == 0, err
        outs.append(out.decode())
    assert outs[1] == outs[0]


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("version", ["311", "5"])
def test_pub_debug_output_matches(any_broker, qos, version):
    outs = []
    for exe in (MOSQUITTO_PUB, tool("midge_pub")):
        rc, out, err = run([exe, "-p", any_broker.port, "-d", "-t", "room/temp", "-m", "23",
                            "-q", qos, "-V", version])
        assert rc == 0, err
        outs.append(norm(out))
    assert outs[1] == outs[0]


@pytest.mark.parametrize("qos", [0, 1])
def test_pub_debug_lines_mode_matches(any_broker, qos):
    outs = []
    for exe in (MOSQUITTO_PUB, tool("midge_pub")):
        rc, out, err = run([exe, "-p", any_broker.port, "-d", "-t", "l", "-l", "-q", qos],
                           stdin=b"a\n\nb\r\nc")
        assert rc == 0, err
        outs.append(out.decode().splitlines())
    if qos == 0:
        assert outs[1] == outs[0]
        return
    # At QoS 1 where the PUBACKs fall between the PUBLISHes is a matter of timing (for
    # mosquitto_pub too): the same lines, and each PUBACK after its PUBLISH.
    assert sorted(outs[1]) == sorted(outs[0])
    got = outs[1]
    for mid in range(1, 5):
        sent = [i for i, l in enumerate(got) if "sending PUBLISH" in l and ", m%d," % mid in l]
        acked = [i for i, l in enumerate(got) if "received PUBACK (Mid: %d," % mid in l]
        assert len(sent) == len(acked) == 1 and sent[0] < acked[0], got
    assert got[-1] == "Client (null) sending DISCONNECT"


FORMATS = [
    r"%t|%p|%q|%r|%l|%m|%x|%X|%%|\t|\\|@@|\e|@Y",
    r"[%10t][%-10t][%.2t][%5.2t][%05l][%-5l][%10p][%-10p][%4x][%08x][%-08X][%3p]",
    r"[%A][%C][%D][%E][%F][%P][%R][%S][%5E][%05F]",
    r"%j",
]

PAYLOADS = [b"abcdef", b'quote " back \\ tab \t nl \n ctl \x01 end', "한글".encode(), b""]


def _tst(text):
    # %j's "tst" and %I are the time of printing: equal in shape, not in value.
    return re.sub(r'"tst":"[^"]*"', '"tst":"T"', text)


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_F_matches(any_broker, clients, fmt):
    args = ["-d", "-t", "fmt/#", "-q", "1", "-C", str(len(PAYLOADS)), "-F", fmt, "-W", "10"]

    def publish():
        for i, p in enumerate(PAYLOADS):
            rc, out, err = run([MOSQUITTO_PUB, "-p", any_broker.port, "-t", "fmt/%d" % i, "-q", 1]
                               + (["-s"] if p else ["-n"]), stdin=p)
            assert rc == 0, err

    want, got = side_by_side(clients, any_broker, args, publish)
    assert _tst(got) == _tst(want)


def test_format_time_fields_shape(any_broker, clients):
    s = clients([tool("midge_sub"), "-p", any_broker.port, "-d", "-t", "tm", "-C", "1",
                 "-F", "%I|%U|@H:@M:@S.@N"])
    s.wait_subscribed()
    mpub(any_broker, "-t", "tm", "-m", "x")
    assert s.wait() == 0
    line = s.payload_lines()[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}\|\d+\.\d{9}\|"
                        r"\d\d:\d\d:\d\d\.\d{9}", line), line


@pytest.mark.parametrize("fmt", ["%Z", "\\k", "%", "abc%-"])
def test_bad_format_rejected_like_mosquitto(fmt):
    rc_m, _, err_m = run([MOSQUITTO_SUB, "-t", "a", "-F", fmt])
    rc_g, _, err_g = run([tool("midge_sub"), "-t", "a", "-F", fmt])
    assert rc_g == rc_m == 1
    assert err_g.splitlines()[0] == err_m.splitlines()[0]


def test_exit_status_nothing_listening():
    port = free_port()
    for exe, args in ((tool("midge_pub"), ["-t", "a", "-m", "x"]),
                      (tool("midge_sub"), ["-t", "a"])):
        rc, out, err = run([exe, "-p", port] + args)
        assert rc != 0
        assert "Connection refused" in err, err
    rc_m, _, _ = run([MOSQUITTO_PUB, "-p", port, "-t", "a", "-m", "x"])
    rc_g, _, _ = run([tool("midge_pub"), "-p", port, "-t", "a", "-m", "x"])
    assert rc_g == rc_m == 1


@pytest.mark.parametrize("kind", ["mosquitto", "midge"])
@pytest.mark.parametrize("version", ["31", "311", "5"])
def test_exit_status_connack_refused(broker_of, kind, version):
    b = broker_of(kind, extra=["allow_anonymous false"])
    results, errs = [], []
    for exe, args in ((MOSQUITTO_PUB, ["-t", "a", "-m", "x"]),
                      (tool("midge_pub"), ["-t", "a", "-m", "x"]),
                      (MOSQUITTO_SUB, ["-t", "a"]),
                      (tool("midge_sub"), ["-t", "a"])):
        rc, out, err = run([exe, "-p", b.port, "-V", version] + args)
        results.append(rc)
        errs.append(err)
    want = 135 if version == "5" else 5  # Not authorized / not authorised
    assert results == [want] * 4
    # The same words on stderr.
    assert errs[1] == errs[0]
    assert errs[3] == errs[2]


@pytest.mark.parametrize("args", [
    ["-t", "a"],                            # no message
    ["-m", "x"],                            # no topic
    ["-t", "a/#", "-m", "x"],               # wildcard in a topic name
    ["-t", "a", "-m", "x", "-q", "3"],
    ["-t", "a", "-m", "x", "-n"],           # two kinds of message
    ["-t", "a", "-m", "x", "-p", "70000"],
    ["-t", "a", "-m", "x", "-k", "3"],
    ["-t", "a", "-m", "x", "--bogus"],
    ["-t", "a", "-f", "/nonexistent/file"],
    ["-t", "a", "-m", "x", "-i", "a", "-I", "b"],
    ["-t", "a", "-m", "x", "-p"],
])
def test_pub_usage_errors_match(args):
    rc_m, _, _ = run([MOSQUITTO_PUB] + args)
    rc_g, _, err = run([tool("midge_pub")] + args)
    assert rc_g == rc_m == 1, err
    assert err.startswith("Error"), err


@pytest.mark.parametrize("args", [
    [],
    ["-t", "a/#/b"],
    ["-t", "a", "-C", "0"],
    ["-t", "a", "-W", "0"],
    ["-t", "a", "-R", "--retained-only"],
    ["-t", "a", "-m", "x"],
])
def test_sub_usage_errors_match(args):
    rc_m, _, _ = run([MOSQUITTO_SUB] + args)
    rc_g, _, err = run([tool("midge_sub")] + args)
    assert rc_g == rc_m == 1, err
    assert "Error" in err
