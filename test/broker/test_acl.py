"""acl_file: mosquitto 2.0's access control file, decision for decision.

One broker (module scope, `threads 1` so that a negative check can end on a PINGREQ round
trip) reads ACL below. Each row of the tables is one decision, run at MQTT 3.1.1 and 5.0:

  WRITE rows   a client publishes (QoS 1 and QoS 2); the PUBACK / PUBREC bytes are checked
               (3.1.1: a plain ack either way; 5.0: reason 0x87 when denied), and a reader
               that may read the topic gets the message exactly when the write is allowed.
  READ rows    a client subscribes (SUBACK grants the QoS asked, as mosquitto 2.0 answers
               with an acl_file: the rules decide what is delivered, not the SUBACK); a writer
               publishes; the client gets the message exactly when it may read it.
  RETAINED     the same decision for a retained message sent on SUBSCRIBE.
  WILL         a client whose will is on the topic is closed by the broker (a second CONNECT
               is a protocol error): the will is published exactly when the client may write.

Pattern rows substitute %c and %u; the CVE-2017-7650 rows give a client id or user name of
'+' or '#', which must not widen a pattern; '$' rows follow mosquitto: a rule must itself
start with '$' to match a '$' topic, and $SYS is never writable by a client.

MIDGE_TEST_BROKER=mosquitto runs the same tables against Debian's mosquitto 2.0.11: the
expected column is mosquitto's behaviour. Other files: the empty ACL file (denies
everything), SIGHUP reloads (connected clients see the new rules at once), errors that
name the file and line, and a check across two worker threads.
"""

import os
import re
import signal
import struct
import time

import pytest

import mqtt_raw as m
from harness import Broker, assert_nothing_before_ping, free_port, run_broker_until_exit
from tlscerts import tls_certs  # noqa: F401  (the session-scoped fixture)

ACL = """\
# general rules: clients that give no user name
topic read anon/r
topic write anon/w
topic anon/rw
topic readwrite anon/tree/#
topic deny anon/tree/secret

user alice
topic read alice/r/#
topic write alice/w/#
topic readwrite   alice/rw/#
topic deny alice/rw/secret/#
topic readwrite $app/#
topic readwrite $SYS/#

user spy
topic readwrite #

user sysreader
topic read $SYS/#

# for everybody, with %c = client id and %u = user name
pattern readwrite dev/%c/#
pattern deny dev/%c/locked
pattern read usr/%u/in/#
pattern write usr/%u/out/#
"""

# identities: (client id, user name or None)
ANON = ("anon-c", None)
ALICE = ("alice-c", "alice")
SPY = ("spy-c", "spy")
DEV1 = ("dev1", None)
BOB = ("bob-c", "bob")
PLUS_ID = ("+", None)          # CVE-2017-7650: would make dev/%c/# into dev/+/#
HASH_ID = ("#", None)
PLUS_USER = ("plususer", "+")  # would make usr/%u/in/# into usr/+/in/#
HASH_USER = ("hashuser", "#")
SYSR = ("sysr-c", "sysreader")

# mosquitto started as root drops to user mosquitto before it reads the ACL file, which then
# cannot open the test's private directory
AS_ROOT = ["user root"] if os.geteuid() == 0 else []

# (row id, writer, topic, allowed, reader that may read the topic)
WRITE_ROWS = [
    ("anon-write-rule", ANON, "anon/w", True, SPY),
    ("anon-read-only", ANON, "anon/r", False, SPY),
    ("anon-bare-topic-line-is-readwrite", ANON, "anon/rw", True, SPY),
    ("anon-hash-rule", ANON, "anon/tree/x", True, SPY),
    ("anon-deny-beats-hash", ANON, "anon/tree/secret", False, SPY),
    ("anon-not-user-rules", ANON, "alice/w/x", False, SPY),
    ("user-write-rule", ALICE, "alice/w/x", True, SPY),
    ("user-read-only", ALICE, "alice/r/x", False, SPY),
    ("user-not-general-rules", ALICE, "anon/w", False, SPY),
    ("user-deny-subtree", ALICE, "alice/rw/secret/x", False, SPY),
    ("user-readwrite", ALICE, "alice/rw/open", True, SPY),
    ("pattern-c-own", DEV1, "dev/dev1/x", True, SPY),
    ("pattern-c-other", DEV1, "dev/dev2/x", False, SPY),
    ("pattern-c-deny", DEV1, "dev/dev1/locked", False, SPY),
    ("pattern-c-for-users-too", ("dev2", "alice"), "dev/dev2/x", True, SPY),
    ("pattern-u-write", BOB, "usr/bob/out/x", True, SPY),
    ("pattern-u-read-only", BOB, "usr/bob/in/x", False, SPY),
    ("pattern-u-other-user", BOB, "usr/carol/out/x", False, SPY),
    ("pattern-u-needs-a-user-name", ANON, "usr//out/x", False, SPY),
    ("cve-plus-client-id", PLUS_ID, "dev/z/x", False, SPY),
    ("cve-hash-client-id", HASH_ID, "dev/z/x", False, SPY),
    ("cve-plus-user", PLUS_USER, "usr/bob/out/x", False, SPY),
    ("cve-hash-user", HASH_USER, "usr/bob/out/x", False, SPY),
    ("cve-id-general-rule-still-applies", ("x+", None), "anon/w", True, SPY),
    ("dollar-topic-own-rule", ALICE, "$app/x", True, ALICE),
    ("dollar-topic-not-by-hash", SPY, "$app/x", False, ALICE),
    ("sys-never-writable", ALICE, "$SYS/broker/x", False, SYSR),
    ("sys-bridge-state-by-rule", ALICE, "$SYS/broker/connection/x/state", True, SYSR),
    ("sys-bridge-state-needs-rule", ANON, "$SYS/broker/connection/x/state", False, SYSR),
    ("nobody-rules", ("nobody-c", "nobody"), "anon/w", False, SPY),
]

# (row id, reader, filter, topic published by the writer, allowed, writer)
READ_ROWS = [
    ("anon-read-rule", ANON, "anon/r", "anon/r", True, SPY),
    ("anon-write-only", ANON, "anon/w", "anon/w", False, SPY),
    ("anon-wildcard-sub-allowed-topic", ANON, "#", "anon/tree/x", True, SPY),
    ("anon-wildcard-sub-denied-topic", ANON, "#", "alice/r/x", False, SPY),
    ("anon-deny-beats-hash", ANON, "anon/tree/#", "anon/tree/secret", False, SPY),
    ("user-read-rule", ALICE, "alice/r/#", "alice/r/x", True, SPY),
    ("user-write-only", ALICE, "alice/w/#", "alice/w/x", False, SPY),
    ("user-not-general-rules", ALICE, "anon/r", "anon/r", False, SPY),
    ("pattern-c-own", DEV1, "dev/#", "dev/dev1/x", True, SPY),
    ("pattern-c-other", DEV1, "dev/#", "dev/dev2/x", False, SPY),
    ("pattern-u-read", BOB, "usr/#", "usr/bob/in/x", True, SPY),
    ("pattern-u-write-only", BOB, "usr/#", "usr/bob/out/x", False, SPY),
    ("cve-plus-client-id", PLUS_ID, "dev/#", "dev/z/x", False, SPY),
    ("cve-hash-client-id", HASH_ID, "dev/#", "dev/z/x", False, SPY),
    ("cve-plus-user", PLUS_USER, "usr/#", "usr/bob/in/x", False, SPY),
    ("cve-hash-user", HASH_USER, "usr/#", "usr/bob/in/x", False, SPY),
    ("dollar-topic-own-rule", ALICE, "$app/#", "$app/x", True, ALICE),
    ("dollar-topic-not-by-hash", SPY, "$app/#", "$app/x", False, ALICE),
]

# $SYS is the broker's own: (row id, reader, allowed) on $SYS/broker/version (retained)
SYS_ROWS = [
    ("sys-rule", SYSR, True),
    ("sys-not-by-hash", SPY, False),
    ("sys-anon", ANON, False),
]


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory):
    d = tmp_path_factory.mktemp("acl")
    (d / "acl").write_text(ACL)
    b = Broker(d, threads=1, extra=AS_ROOT + ["acl_file %s" % (d / "acl")])
    yield b
    b.stop()


def client(b, who, version, **kw):
    c = m.RawClient(b.port, version=version)
    cid, user = who
    c.connack = c.connect(cid, username=user, **kw)
    return c


def uniq(prefix, version, qos=None):
    return "%s-v%d%s" % (prefix, version, "" if qos is None else "-q%d" % qos)


def expected_ack(ptype, pid, version, allowed):
    """The bytes of a PUBACK / PUBREC: 3.1.1 has no reason code; 5.0 writes 0x87 when the
    ACL denies and nothing after the packet id on success (reason 0, no properties)."""
    if version == 5 and not allowed:
        return bytes([ptype << 4, 3]) + struct.pack("!H", pid) + b"\x87"
    return bytes([ptype << 4, 2]) + struct.pack("!H", pid)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("row", WRITE_ROWS, ids=[r[0] for r in WRITE_ROWS])
def test_acl_write(acl_broker, row, qos, version):
    _, writer, topic, allowed, reader = row
    rd = client(acl_broker, (uniq(reader[0] + "-rd", version, qos), reader[1]), version)
    w = client(acl_broker, writer, version)
    try:
        rd.subscribe([(topic, 1)])
        pid = 0x1234
        w.send(m.publish(topic, b"acl-%d" % qos, qos=qos, pid=pid, version=version))
        if qos == 1:
            assert w.recv_raw() == expected_ack(m.PUBACK, pid, version, allowed)
        elif qos == 2:
            assert w.recv_raw() == expected_ack(m.PUBREC, pid, version, allowed)
            if version == 4 or allowed:  # 5.0: a reason >= 0x80 ends the flow at PUBREC
                w.send(m.pubrel(pid))
                assert w.expect(m.PUBCOMP).pid == pid
        if allowed:
            p = rd.recv_publish()
            assert (p.topic, p.payload) == (topic, b"acl-%d" % qos)
        else:
            assert_nothing_before_ping(w, rd)
    finally:
        w.close()
        rd.close()


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("row", READ_ROWS, ids=[r[0] for r in READ_ROWS])
def test_acl_read(acl_broker, row, version):
    _, reader, filt, topic, allowed, writer = row
    rd = client(acl_broker, reader, version)
    w = client(acl_broker, (uniq(writer[0] + "-wr", version), writer[1]), version)
    try:
        sa = rd.subscribe([(filt, 1)], pid=7)
        # granted, whatever the rules: mosquitto 2.0's acl_file decides deliveries only
        assert sa.raw == (b"\x90\x03\x00\x07\x01" if version == 4 else b"\x90\x04\x00\x07\x00\x01")
        w.publish(topic, b"r", qos=1)
        if allowed:
            p = rd.recv_publish()
            assert (p.topic, p.payload) == (topic, b"r")
        else:
            assert_nothing_before_ping(w, rd)
    finally:
        w.close()
        rd.close()


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("row", READ_ROWS, ids=[r[0] for r in READ_ROWS])
def test_acl_retained(acl_broker, row, version):
    _, reader, filt, topic, allowed, writer = row
    w = client(acl_broker, (uniq(writer[0] + "-ret", version), writer[1]), version)
    w.publish(topic, b"kept", qos=1, retain=True)
    rd = client(acl_broker, reader, version)
    try:
        rd.subscribe([(filt, 1)], pid=9)
        if allowed:
            p = rd.recv_publish()
            assert (p.topic, p.payload, p.retain) == (topic, b"kept", True)
        else:
            assert_nothing_before_ping(rd)
    finally:
        w.publish(topic, b"", qos=1, retain=True)  # clear it for the next row
        w.close()
        rd.close()


def closed_log(b, cid):
    """How often the log says client cid's socket went away (EOF or socket error)."""
    return r"(Client %s closed its connection\.|Socket error on client %s, disconnecting\.)" % (
        re.escape(cid), re.escape(cid))


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("row", WRITE_ROWS, ids=[r[0] for r in WRITE_ROWS])
def test_acl_will(acl_broker, row, version):
    _, writer, topic, allowed, reader = row
    rd = client(acl_broker, (uniq(reader[0] + "-will", version), reader[1]), version)
    try:
        rd.subscribe([(topic, 1)])
        w = client(acl_broker, writer, version,
                   will={"topic": topic, "payload": b"gone", "qos": 1})
        rx = closed_log(acl_broker, writer[0])
        seen = len(re.findall(rx, acl_broker.log(), re.M))
        w.close()  # no DISCONNECT: the will is due
        if allowed:
            p = rd.recv_publish()
            assert (p.topic, p.payload) == (topic, b"gone")
        else:
            # once the log says so, the one broker thread has handled the close (and the
            # will with it) before it reads the reader's PINGREQ
            acl_broker.wait_log(rx, count=seen + 1)
            assert_nothing_before_ping(rd)
    finally:
        rd.close()


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("row", SYS_ROWS, ids=[r[0] for r in SYS_ROWS])
def test_acl_sys_read(acl_broker, row, version):
    """$SYS/broker/version is retained from the start: only a rule starting with $SYS gives it."""
    _, reader, allowed = row
    rd = client(acl_broker, reader, version)
    try:
        rd.subscribe([("$SYS/broker/version", 0)])
        if allowed:
            p = rd.recv_publish()
            assert p.topic == "$SYS/broker/version"
        else:
            assert_nothing_before_ping(rd)
    finally:
        rd.close()


# ---- one broker per test: the empty file, reloads, errors, two threads

def acl_factory(broker_factory, tmp_path, text, name="acl"):
    path = tmp_path / name
    path.write_text(text)
    return broker_factory(extra=AS_ROOT + ["acl_file %s" % path]), path


def reload(b):
    """SIGHUP, then wait until the broker says it reloaded. mosquitto says so before it reads
    the files, but reads them before it handles another packet (one thread); midge says so
    while every worker is parked, and swaps the rules before they run again."""
    rx = r"Reloading config|Reloaded configuration"
    seen = len(re.findall(rx, b.log()))
    b.proc.send_signal(signal.SIGHUP)
    b.wait_log(rx, count=seen + 1)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_acl_empty_file_denies_everything(broker_factory, tmp_path, version):
    b, _ = acl_factory(broker_factory, tmp_path, "")
    for who in (("e-anon", None), ("e-user", "someone")):
        c = client(b, who, version)
        c.subscribe([("#", 1), ("$SYS/#", 1)])   # granted all the same
        c.send(m.publish("a/b", b"x", qos=1, pid=5, version=version))
        assert c.recv_raw() == expected_ack(m.PUBACK, 5, version, False)
        c.send(m.publish("a/b", b"x", qos=1, pid=6, retain=True, version=version))
        assert c.recv_raw() == expected_ack(m.PUBACK, 6, version, False)
        # nothing arrives: not its own message, not the broker's retained $SYS topics
        assert_nothing_before_ping(c)
        c.close()


@pytest.mark.threaded
@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_acl_sighup_applies_to_connected_clients(broker_factory, tmp_path, version):
    """A read right revoked by a reload stops deliveries to a client already subscribed;
    a right granted by it works at once (mosquitto re-reads the file on SIGHUP and re-links
    every connected client to its rules)."""
    before = "user alice\ntopic readwrite r/#\n\nuser w\ntopic write r/#\ntopic write s/#\n"
    after = "user alice\ntopic readwrite s/#\n\nuser w\ntopic write r/#\ntopic write s/#\n"
    b, path = acl_factory(broker_factory, tmp_path, before)
    alice = client(b, ("alice-c", "alice"), version)
    w = client(b, ("w-c", "w"), version)
    alice.subscribe([("r/#", 1), ("s/#", 1)])
    w.publish("r/1", b"before", qos=1)
    assert alice.recv_publish().payload == b"before"
    path.write_text(after)
    reload(b)
    w.publish("r/2", b"revoked", qos=1)
    assert_nothing_before_ping(w, alice)
    w.publish("s/1", b"granted", qos=1)
    p = alice.recv_publish()
    assert (p.topic, p.payload) == ("s/1", b"granted")
    # and her own writes follow the new file too
    alice.send(m.publish("r/3", b"x", qos=1, pid=3, version=version))
    assert alice.recv_raw() == expected_ack(m.PUBACK, 3, version, False)
    alice.close()
    w.close()


@pytest.mark.midge_only
def test_acl_sighup_broken_file_fails_closed(broker_factory, tmp_path):
    """A file that no longer parses denies everything after the reload, until a good file is
    read. By design: Debian's mosquitto 2.0.11 fails OPEN here (its reload unregisters the
    ACL check before parsing and registers it again only on success, so every PUBLISH and
    delivery is allowed; this test run against it sees t/2 delivered)."""
    b, path = acl_factory(broker_factory, tmp_path, "user u\ntopic readwrite t/#\n")
    u = client(b, ("u-c", "u"), 5)
    u.subscribe([("t/#", 0)])
    u.publish("t/1", b"ok", qos=0)
    assert u.recv_publish().payload == b"ok"
    path.write_text("topic rw t/#\nuser u\ntopic readwrite t/#\n")
    reload(b)
    u.send(m.publish("t/2", b"x", qos=1, pid=4, version=5))
    assert u.recv_raw() == expected_ack(m.PUBACK, 4, 5, False)
    assert_nothing_before_ping(u)
    path.write_text("user u\ntopic readwrite t/#\n")
    reload(b)
    u.publish("t/3", b"back", qos=0)
    assert u.recv_publish().payload == b"back"
    u.close()


ERRORS = [
    ("bad-access", "user u\n\ntopic rw a/b\n", 3, r"invalid topic access type 'rw'"),
    ("empty-topic", "topic\n", 1, r"empty topic"),
    ("missing-user", "# c\nuser\n", 2, r"missing username"),
    ("indented-comment", "topic a\n  # not a comment in mosquitto\n", 2, r"invalid line starting '#'"),
    ("tab-after-keyword", "topic\ta/b\n", 1, r"invalid line starting 'topic\ta/b'"),
    ("hash-not-last", "pattern read a/#/%c\n", 1, r"invalid ACL topic 'a/#/%c'"),
    ("plus-in-level", "topic read a/b+\n", 1, r"invalid ACL topic 'a/b\+'"),
]


@pytest.mark.midge_only
@pytest.mark.parametrize("case", ERRORS, ids=[e[0] for e in ERRORS])
def test_acl_file_errors_name_file_and_line(tmp_path, case):
    """mosquitto refuses the same files ("Error: Invalid ... in acl_file"), without a line."""
    _, text, line, what = case
    acl = tmp_path / "bad.acl"
    acl.write_text(text)
    rc, out = run_broker_until_exit(tmp_path, "listener %d 127.0.0.1\nallow_anonymous true\n"
                                    "acl_file %s\n" % (free_port(), acl))
    assert rc not in (0, None), out
    assert re.search(r"Error: %s:%d: %s" % (re.escape(str(acl)), line, what), out), out


@pytest.mark.midge_only
def test_acl_file_missing_is_an_error(tmp_path):
    rc, out = run_broker_until_exit(tmp_path, "listener %d 127.0.0.1\nallow_anonymous true\n"
                                    "acl_file %s\n" % (free_port(), tmp_path / "nope"))
    assert rc not in (0, None), out
    assert 'Error: Unable to open acl_file "%s": No such file or directory.' % (tmp_path / "nope") in out


def test_acl_file_quirks_parse_as_mosquitto(broker_factory, tmp_path):
    """What mosquitto accepts means the same: trailing blanks and CR cut, several spaces
    between words, a topic with a space in it, a one-word topic line is readwrite, a user
    name is the rest of the line, trimmed, and a repeated user section adds to the first."""
    text = ("topic read   sp ace/x  \r\n"
            "user   my name  \n"
            "topic q/#\n"
            "user other\n"
            "topic read o/#\n"
            "user my name\n"
            "topic deny q/no\n")
    b, _ = acl_factory(broker_factory, tmp_path, text)
    a = client(b, ("qa", None), 4)
    a.subscribe([("sp ace/x", 0)])
    u = client(b, ("qu", "my name"), 4)
    u.subscribe([("q/#", 0)])
    u.publish("q/yes", b"1", qos=0)
    assert u.recv_publish().topic == "q/yes"
    u.send(m.publish("q/no", b"2", qos=1, pid=2))          # denied: acked, dropped
    assert u.recv_raw() == expected_ack(m.PUBACK, 2, 4, False)
    u.send(m.publish("sp ace/x", b"3", qos=1, pid=3))      # not hers: acked, dropped
    assert u.recv_raw() == expected_ack(m.PUBACK, 3, 4, False)
    assert_nothing_before_ping(u, a)
    a.close()
    u.close()


@pytest.mark.threaded
def test_acl_reads_across_worker_threads(broker_factory, tmp_path):
    """Deliveries to sessions on the other worker are checked there, with the receiver's
    rules: each reader gets the sentinel and, before it, exactly what it may read."""
    text = "user w\ntopic write x/#\n" + "".join(
        "user r%d\ntopic read x/%s\ntopic read x/end\n" % (i, "all" if i % 2 else "other")
        for i in range(8))
    b, _ = acl_factory(broker_factory, tmp_path, text)
    readers = [client(b, ("rc%d" % i, "r%d" % i), 5) for i in range(8)]
    for r in readers:
        r.subscribe([("x/#", 1)])
    w = client(b, ("wc", "w"), 5)
    w.publish("x/all", b"a", qos=1)
    w.publish("x/none", b"n", qos=1)
    w.publish("x/end", b"end", qos=1)
    for i, r in enumerate(readers):
        got = [r.recv_publish().payload]
        if got[0] != b"end":
            got.append(r.recv_publish().payload)
        assert got == ([b"a", b"end"] if i % 2 else [b"end"]), (i, got)
        r.close()
    w.close()


@pytest.mark.parametrize("as_user", ["alice", "bob"])
def test_acl_queued_messages_rechecked_on_reconnect(broker_factory, tmp_path, as_user):
    """Messages queued for an offline session are checked again when it comes back, with the
    user name it comes back with (mosquitto's connection_check_acl): alice gets hers, the
    same client id reconnecting as bob does not."""
    b, _ = acl_factory(broker_factory, tmp_path, "user alice\ntopic read alice/r/#\n"
                       "user bob\ntopic read bob/#\nuser spy\ntopic write #\n")
    c = client(b, ("q-c", "alice"), 4, clean=False)
    c.subscribe([("alice/r/#", 1)])
    c.disconnect()
    spy = client(b, ("spy-q", "spy"), 4)
    spy.publish("alice/r/x", b"queued", qos=1)
    c = client(b, ("q-c", as_user), 4, clean=False)
    assert c.connack.session_present == 1
    if as_user == "alice":
        assert c.recv_publish().payload == b"queued"
    else:
        assert_nothing_before_ping(c)
    c.close()
    spy.close()


def test_acl_user_is_the_certificate_identity(broker_factory, tmp_path, tls_certs):  # noqa: F811
    """use_identity_as_username: the certificate's CN (client1) is the user that the ACL's
    user sections and %u see, whatever user name the CONNECT carries."""
    import ssl
    port = free_port()
    acl = tmp_path / "acl"
    acl.write_text("user client1\ntopic readwrite certs/#\n"
                   "user claimed\ntopic readwrite claimed/#\n"
                   "pattern readwrite byuser/%u/#\n")
    c = tls_certs
    b = broker_factory(extra=AS_ROOT + ["acl_file %s" % acl, "listener %d 127.0.0.1" % port,
                                        "cafile %s" % c.ca, "certfile %s" % c.server_cert,
                                        "keyfile %s" % c.server_key, "require_certificate true",
                                        "use_identity_as_username true"])
    assert b  # started
    ctx = ssl.create_default_context(cafile=c.ca)
    ctx.check_hostname = False
    ctx.load_cert_chain(c.client_cert, c.client_key)
    raw = m.RawClient(port, version=5)
    raw.sock = ctx.wrap_socket(raw.sock, server_hostname="localhost")
    raw.connect("cert-c", username="claimed")
    for pid, topic, allowed in ((1, "certs/x", True), (2, "byuser/client1/x", True),
                                (3, "claimed/x", False), (4, "byuser/claimed/x", False)):
        raw.send(m.publish(topic, b"x", qos=1, pid=pid, version=5))
        ack = raw.expect(m.PUBACK)
        # allowed and nobody subscribed: 0x10 No matching subscribers; denied: 0x87
        assert (ack.pid, ack.reason) == (pid, 0x10 if allowed else 0x87), (topic, ack)
    raw.close()
