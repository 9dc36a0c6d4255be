"""midge_pub and midge_sub against Debian's mosquitto broker and against midge: messages at
each QoS and protocol version, retained messages, wills, MQTT 5 properties, a 10 MB payload,
persistent sessions, and Debian's mosquitto_pub/mosquitto_sub on the other end.

Every test runs once per broker (any_broker: mosquitto, midge). A subscriber is started with
-d so the test can wait for its SUBACK before publishing; payload_lines() drops the -d lines.
"""

import os
import signal
import time

import pytest

from interop.tool_helpers import (MOSQUITTO_PUB, MOSQUITTO_SUB, MOSQUITTO_SUB_LB, run,
                                  tool)


def pub(broker, *args, stdin=b""):
    return run([tool("midge_pub"), "-p", broker.port] + list(args), stdin=stdin)


def sub_args(broker, *args):
    return [tool("midge_sub"), "-p", broker.port, "-d"] + list(args)


def ok(result):
    rc, out, err = result
    assert rc == 0, "exit %s\nstdout:\n%s\nstderr:\n%s" % (rc, out[-2000:], err[-2000:])
    return out


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_qos_roundtrip(any_broker, clients, qos):
    s = clients(sub_args(any_broker, "-t", "room/temp", "-q", qos, "-v", "-C", 2))
    s.wait_subscribed()
    ok(pub(any_broker, "-t", "room/temp", "-m", "23", "-q", qos))
    ok(pub(any_broker, "-t", "room/temp", "-m", "24", "-q", qos))
    assert s.wait() == 0
    assert s.payload_lines() == ["room/temp 23", "room/temp 24"]
    out = s.out()
    # The -d lines show the QoS the broker delivered at, as mosquitto_sub's do.
    assert "received PUBLISH (d0, q%d, r0, m" % qos in out


@pytest.mark.parametrize("version", ["31", "311", "5", "mqttv31", "mqttv311", "mqttv5"])
def test_protocol_versions(any_broker, clients, version):
    s = clients(sub_args(any_broker, "-t", "v/#", "-V", version, "-q", 1, "-v", "-C", 1))
    s.wait_subscribed()
    ok(pub(any_broker, "-t", "v/x", "-m", "hello " + version, "-V", version, "-q", 1))
    assert s.wait() == 0
    assert s.payload_lines() == ["v/x hello " + version]
    if version.endswith("5"):
        assert "sending CONNECT" in s.out()


def test_bad_protocol_version_rejected(any_broker):
    rc, out, err = pub(any_broker, "-t", "a", "-m", "x", "-V", "4")
    assert rc == 1
    assert "Invalid protocol version" in err


def test_retained_and_flags(any_broker, clients):
    ok(pub(any_broker, "-t", "ret/a", "-m", "old", "-r", "-q", 1))
    # -F %r shows the retain flag; the retained message arrives first with r=1.
    s = clients(sub_args(any_broker, "-t", "ret/#", "-C", 2, "-F", "%t %p %r"))
    s.wait_subscribed()
    ok(pub(any_broker, "-t", "ret/b", "-m", "live"))
    assert s.wait() == 0
    assert s.payload_lines() == ["ret/a old 1", "ret/b live 0"]


def test_no_stale_R(any_broker, clients):
    ok(pub(any_broker, "-t", "r/a", "-m", "stale", "-r"))
    s = clients(sub_args(any_broker, "-t", "r/#", "-R", "-C", 1, "-v"))
    s.wait_subscribed()
    ok(pub(any_broker, "-t", "r/b", "-m", "fresh"))
    assert s.wait() == 0
    assert s.payload_lines() == ["r/b fresh"]


def test_retained_only(any_broker, clients):
    ok(pub(any_broker, "-t", "ro/1", "-m", "one", "-r"))
    ok(pub(any_broker, "-t", "ro/2", "-m", "two", "-r"))
    s = clients(sub_args(any_broker, "-t", "ro/#", "--retained-only", "-v", "-W", 10))
    s.wait_out(r"^ro/1 one$")
    s.wait_out(r"^ro/2 two$")
    ok(pub(any_broker, "-t", "ro/3", "-m", "live"))
    # The first non-retained message ends it, unprinted.
    assert s.wait() == 0
    assert sorted(s.payload_lines()) == ["ro/1 one", "ro/2 two"]


def test_remove_retained(any_broker, clients):
    ok(pub(any_broker, "-t", "rm/1", "-m", "one", "-r"))
    ok(pub(any_broker, "-t", "rm/keep", "-m", "kept", "-r"))
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-t", "rm/#",
                        "--remove-retained", "-T", "rm/keep", "-W", 2])
    assert rc == 27, (rc, out, err)  # ran until -W: only the retained ones came
    assert out == b"one\n"
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-t", "rm/#", "-v", "-W", 2])
    assert rc == 27
    assert out == b"rm/keep kept\n"  # rm/1 was cleared, rm/keep spared by -T


def test_filter_out_T(any_broker, clients):
    s = clients(sub_args(any_broker, "-t", "f/#", "-T", "f/secret/#", "-T", "f/x", "-v",
                         "-C", 1))
    s.wait_subscribed()
    ok(pub(any_broker, "-t", "f/secret/a", "-m", "no"))
    ok(pub(any_broker, "-t", "f/x", "-m", "no"))
    ok(pub(any_broker, "-t", "f/y", "-m", "yes"))
    assert s.wait() == 0
    assert s.payload_lines() == ["f/y yes"]


def test_timeout_W(any_broker):
    t0 = time.monotonic()
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-t", "nothing", "-W", 1])
    took = time.monotonic() - t0
    assert rc == 27
    assert "Timed out" in err
    assert out == b""
    assert 0.9 <= took < 5


def test_exit_after_subscribe_E(any_broker):
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-t", "a", "-t", "b/+",
                        "-q", 1, "-E", "-d"], timeout=10)
    assert rc == 0, err
    assert out.decode().endswith("Subscribed (mid: 1): 1, 1\nClient (null) sending DISCONNECT\n")


def test_no_newline_N_and_null_v(any_broker):
    ok(pub(any_broker, "-t", "n/1", "-m", "abc", "-r"))
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-t", "n/1", "-N", "-C", 1])
    assert (rc, out) == (0, b"abc")
    ok(pub(any_broker, "-t", "n/2", "-n", "-r", "-q", 1))
    # A zero-length retained message clears the retained message: nothing arrives.
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-t", "n/2", "-v", "-W", 1])
    assert (rc, out) == (27, b"")


def test_null_message_prints_null_with_v(any_broker, clients):
    s = clients(sub_args(any_broker, "-t", "z", "-v", "-C", 2))
    s.wait_subscribed()
    ok(pub(any_broker, "-t", "z", "-n"))
    ok(pub(any_broker, "-t", "z", "-m", "after"))
    assert s.wait() == 0
    assert s.payload_lines() == ["z (null)", "z after"]


def test_lines_l_stdin_s_file_f(any_broker, clients, tmp_path):
    s = clients(sub_args(any_broker, "-t", "in", "-C", 6, "-F", "[%p]%l"))
    s.wait_subscribed()
    ok(pub(any_broker, "-t", "in", "-l", "-q", 1, stdin=b"first\n\nthird\r\nlast"))
    ok(pub(any_broker, "-t", "in", "-s", stdin=b"all\nof it"))
    f = tmp_path / "f.bin"
    f.write_bytes(b"file")
    ok(pub(any_broker, "-t", "in", "-f", f))
    assert s.wait() == 0
    out = s.out()
    for want in ("[first]5", "[]0", "[third\r]6", "[last]4", "[all\nof it]9", "[file]4"):
        assert want in out, out


def test_repeat(any_broker, clients):
    s = clients(sub_args(any_broker, "-t", "rep", "-C", 3, "-F", "%p"))
    s.wait_subscribed()
    t0 = time.monotonic()
    ok(pub(any_broker, "-t", "rep", "-m", "again", "--repeat", 3, "--repeat-delay", 0.3))
    took = time.monotonic() - t0
    assert s.wait() == 0
    assert s.payload_lines() == ["again"] * 3
    assert took >= 0.6


def test_url_L(any_broker, clients):
    s = clients([tool("midge_sub"), "-d", "-L", "mqtt://127.0.0.1:%d/url/#" % any_broker.port,
                 "-v", "-C", 1])
    s.wait_subscribed()
    ok(run([tool("midge_pub"), "-L", "mqtt://localhost:%d/url/a/b" % any_broker.port,
            "-m", "via url"]))
    assert s.wait() == 0
    assert s.payload_lines() == ["url/a/b via url"]


def test_url_L_errors():
    rc, out, err = run([tool("midge_pub"), "-L", "http://localhost/a", "-m", "x"])
    assert rc == 1 and "unsupported URL scheme" in err
    rc, out, err = run([tool("midge_pub"), "-L", "mqtt://localhost:1883", "-m", "x"])
    assert rc == 1 and "topic missing" in err


def test_will(any_broker, clients):
    w = clients(sub_args(any_broker, "-t", "will/#", "-v", "-C", 1))
    w.wait_subscribed()
    dying = clients(sub_args(any_broker, "-t", "x", "--will-topic", "will/me",
                             "--will-payload", "gone", "--will-qos", 1, "-k", 5))
    dying.wait_subscribed()
    dying.kill(signal.SIGKILL)  # no DISCONNECT: the broker publishes the will
    assert w.wait(timeout=15) == 0
    assert w.payload_lines() == ["will/me gone"]


def test_will_retained(any_broker, clients):
    dying = clients(sub_args(any_broker, "-t", "x", "--will-topic", "wr", "--will-payload",
                             "bye", "--will-retain"))
    dying.wait_subscribed()
    dying.kill(signal.SIGKILL)
    deadline = time.monotonic() + 10  # until the broker has seen the kill: polled
    while True:
        rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-t", "wr", "-C", 1,
                            "-F", "%p %r", "-W", 2])
        if rc == 0 or time.monotonic() > deadline:
            break
    assert (rc, out) == (0, b"bye 1\n")


def test_will_needs_topic():
    rc, out, err = run([tool("midge_pub"), "-t", "a", "-m", "b", "--will-payload", "x"])
    assert rc == 1 and "Will payload given, but no will topic given" in err


def test_v5_properties_D(any_broker, clients):
    fmt = "%P|%C|%R|%D|%E|%F|%p"
    s = clients(sub_args(any_broker, "-t", "props", "-V", 5, "-C", 1, "-F", fmt))
    m = clients(MOSQUITTO_SUB_LB + ["-p", any_broker.port, "-t", "props", "-V", 5, "-C", 1,
                                    "-F", fmt, "-W", 10, "-d"])
    s.wait_subscribed()
    m.wait_subscribed()
    ok(pub(any_broker, "-t", "props", "-m", "body", "-V", 5,
           "-D", "publish", "user-property", "k", "v",
           "-D", "publish", "user-property", "k2", "v2",
           "-D", "publish", "content-type", "text/plain",
           "-D", "publish", "response-topic", "reply/here",
           "-D", "publish", "correlation-data", "c0rr",
           "-D", "publish", "message-expiry-interval", "100",
           "-D", "publish", "payload-format-indicator", "1"))
    assert s.wait() == 0
    assert m.wait() == 0
    want = "k:v k2:v2|text/plain|reply/here|c0rr|100|1|body"
    assert s.payload_lines() == [want]
    # Debian's mosquitto_sub decodes midge_pub's properties the same way.
    assert m.payload_lines() == [want]


def test_v5_subscription_identifier(any_broker, clients):
    s = clients(sub_args(any_broker, "-t", "sid", "-V", 5, "-C", 1, "-F", "%S %p",
                         "-D", "subscribe", "subscription-identifier", 42))
    s.wait_subscribed()
    ok(run([MOSQUITTO_PUB, "-p", any_broker.port, "-t", "sid", "-m", "x", "-V", 5]))
    assert s.wait() == 0
    assert s.payload_lines() == ["42 x"]


def test_property_errors():
    rc, out, err = run([tool("midge_pub"), "-t", "a", "-m", "x", "-V", 5, "-D", "publish",
                        "bogus", "k"])
    assert rc == 1 and "Invalid property name" in err
    rc, out, err = run([tool("midge_pub"), "-t", "a", "-m", "x", "-V", 5, "-D", "publish",
                        "session-expiry-interval", "3"])
    assert rc == 1 and "not allowed for publish" in err
    rc, out, err = run([tool("midge_pub"), "-t", "a", "-m", "x", "-V", 5, "-D", "foo",
                        "user-property", "a", "b"])
    assert rc == 1 and "Invalid command" in err


@pytest.mark.slow
def test_10mb_file_byte_identical(any_broker, tmp_path):
    data = os.urandom(10 * 1024 * 1024)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    # Retained, so the subscriber needs no synchronisation: it gets it on subscribing.
    ok(pub(any_broker, "-t", "big", "-f", src, "-r", "-q", 1))
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-t", "big", "-C", 1, "-N",
                        "-q", 1], timeout=60)
    assert rc == 0, err
    assert len(out) == len(data)
    assert out == data
    # And Debian's mosquitto_sub reads the same bytes.
    rc, out, err = run([MOSQUITTO_SUB, "-p", any_broker.port, "-t", "big", "-C", 1, "-N"],
                       timeout=60)
    assert out == data


@pytest.mark.parametrize("version", ["311", "5"])
def test_persistent_session(any_broker, clients, version):
    cid = "midge-persist-%s" % version
    # Subscribe with a persistent session, then leave.
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-c", "-i", cid, "-q", 1,
                        "-t", "p/#", "-E", "-V", version])
    assert rc == 0, err
    # Published while the subscriber is away...
    ok(pub(any_broker, "-t", "p/1", "-m", "while away 1", "-q", 1))
    ok(pub(any_broker, "-t", "p/2", "-m", "while away 2", "-q", 2))
    ok(pub(any_broker, "-t", "p/3", "-m", "not for it", "-q", 0))  # QoS 0 may be dropped
    # ...arrives when it comes back with the same id and -c.
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-c", "-i", cid, "-q", 1,
                        "-t", "p/#", "-C", 2, "-v", "-V", version, "-W", 10])
    assert rc == 0, err
    assert out.decode().splitlines() == ["p/1 while away 1", "p/2 while away 2"]


def test_unsubscribe_U_persistent(any_broker, clients):
    cid = "midge-unsub"
    ok(run([tool("midge_sub"), "-p", any_broker.port, "-c", "-i", cid, "-q", 1, "-t", "u/a",
            "-t", "u/b", "-E"]))
    # Same session: -U drops u/a, keeps u/b.
    ok(run([tool("midge_sub"), "-p", any_broker.port, "-c", "-i", cid, "-U", "u/a", "-E"]))
    ok(pub(any_broker, "-t", "u/a", "-m", "dropped", "-q", 1))
    ok(pub(any_broker, "-t", "u/b", "-m", "kept", "-q", 1))
    rc, out, err = run([tool("midge_sub"), "-p", any_broker.port, "-c", "-i", cid, "-q", 1,
                        "-t", "u/none", "-v", "-W", 2])
    assert rc == 27
    assert out == b"u/b kept\n"


def test_c_needs_id():
    rc, out, err = run([tool("midge_sub"), "-t", "a", "-c"])
    assert rc == 1 and "You must provide a client id" in err
    rc, out, err = run([tool("midge_pub"), "-t", "a", "-m", "x", "-c", "-V", 5])
    assert rc == 1 and "infinite session expiry interval" in err


def test_mosquitto_sub_receives_from_midge_pub(any_broker, clients):
    m = clients(MOSQUITTO_SUB_LB + ["-p", any_broker.port, "-t", "x/#", "-v", "-q", 2, "-C", 3,
                                    "-d", "-W", 10])
    m.wait_out(r"^Subscribed \(mid: ")
    for q in (0, 1, 2):
        ok(pub(any_broker, "-t", "x/%d" % q, "-m", "q%d" % q, "-q", q))
    assert m.wait() == 0
    assert [l for l in m.out().splitlines() if l.startswith("x/")] == \
        ["x/0 q0", "x/1 q1", "x/2 q2"]


def test_midge_sub_receives_from_mosquitto_pub(any_broker, clients):
    s = clients(sub_args(any_broker, "-t", "y/#", "-v", "-q", 2, "-C", 3))
    s.wait_subscribed()
    for q in (0, 1, 2):
        ok(run([MOSQUITTO_PUB, "-p", any_broker.port, "-t", "y/%d" % q, "-m", "q%d" % q,
                "-q", q]))
    assert s.wait() == 0
    assert s.payload_lines() == ["y/0 q0", "y/1 q1", "y/2 q2"]


def test_korean_text_intact(any_broker, clients):
    text = "즐거운 날입니다."
    s = clients(sub_args(any_broker, "-t", "letter", "-C", 1, "-v"))
    s.wait_subscribed()
    ok(pub(any_broker, "-t", "letter", "-m", text))
    assert s.wait() == 0
    assert s.payload_lines() == ["letter " + text]


@pytest.mark.parametrize("kind", ["mosquitto", "midge"])
def test_sub_reconnects_after_broker_restart(broker_of, clients, kind):
    b1 = broker_of(kind, name="first")
    s = clients([tool("midge_sub"), "-p", b1.port, "-d", "-t", "again", "-v", "-q", 1])
    s.wait_subscribed()
    b1.stop()
    b2 = broker_of(kind, name="second", port=b1.port)
    # Like mosquitto_sub it connects again (within a few seconds) and subscribes again.
    s.wait_out(r"Subscribed \(mid: \d+\): 1\n(.|\n)*Subscribed \(mid: \d+\): 1", timeout=15)
    ok(pub(b2, "-t", "again", "-m", "back", "-q", 1))
    s.wait_out(r"^again back$")
    assert s.p.poll() is None


def test_sigint_ends_sub_cleanly(any_broker, clients):
    s = clients(sub_args(any_broker, "-t", "quiet"))
    s.wait_subscribed()
    s.p.send_signal(signal.SIGINT)
    assert s.wait(timeout=5) == 0
    assert s.out().endswith("Client (null) sending DISCONNECT\n")


def test_client_id_prefix_I(any_broker, clients):
    s = clients(sub_args(any_broker, "-t", "idp", "-I", "pre-"))
    s.wait_subscribed()
    # The -d lines name the client: the prefix followed by the process id.
    assert "Client pre-%d sending CONNECT" % s.p.pid in s.out()


@pytest.mark.parametrize("kind", ["mosquitto", "midge"])
def test_username_password(broker_of, tmp_path, kind):
    pw = tmp_path / "passwd"
    pw.write_text("")
    rc, out, err = run(["/usr/bin/mosquitto_passwd", "-b", pw, "alice", "s3cret"])
    assert rc == 0, err
    extra = ["allow_anonymous false", "password_file %s" % pw]
    if kind == "mosquitto":
        extra.append("user root")  # else it drops to user mosquitto, who cannot read tmp_path
    b = broker_of(kind, extra=extra)
    ok(pub(b, "-t", "a", "-m", "x", "-u", "alice", "-P", "s3cret"))
    ok(run([tool("midge_pub"), "-L", "mqtt://alice:s3cret@127.0.0.1:%d/a" % b.port, "-m", "x"]))
    rc, out, err = pub(b, "-t", "a", "-m", "x", "-u", "alice", "-P", "wrong")
    assert rc == 5, err  # Connection Refused: not authorised
    rc, out, err = pub(b, "-t", "a", "-m", "x", "-u", "alice", "-P", "wrong", "-V", 5)
    assert rc == 135, err  # Not authorized
