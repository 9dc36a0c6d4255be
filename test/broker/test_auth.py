"""Authentication as mosquitto 2.0 does it: password_file ($7$ and $6$ lines, made by Debian's
mosquitto_passwd), allow_anonymous, per_listener_settings, clientid_prefixes,
use_username_as_clientid, the CONNACK bytes of every refusal at each protocol level, the
re-check of connected clients on SIGHUP, and password hashing that never stalls the other
clients of a worker. Every test but the last runs against MIDGE_TEST_BROKER=mosquitto too.
"""

import base64
import os
import signal
import subprocess
import time

import pytest

import mqtt_raw as M
from harness import IS_MIDGE, IS_MOSQUITTO
from mqtt_raw import RawClient

PASSWD = "/usr/bin/mosquitto_passwd"
# mosquitto drops to the user `mosquitto`, who cannot read pytest's temporary directories
AS_ROOT = ["user root"] if IS_MOSQUITTO else []

# CONNACK refusals, byte for byte: mosquitto 2.0.11 answers a wrong password, an unknown
# user, a missing password, a refused anonymous client, a client id without the required
# prefix and use_username_as_clientid without a user name all with "not authorised": 3.x
# return code 5, 5.0 reason code 0x87 (with an empty property list).
REFUSED = {3: bytes([0x20, 2, 0, 5]), 4: bytes([0x20, 2, 0, 5]), 5: bytes([0x20, 3, 0, 0x87, 0])}
ACCEPTED = {3: bytes([0x20, 2, 0, 0]), 4: bytes([0x20, 2, 0, 0])}


def mkpasswd(path, user, password, *opts):
    subprocess.run([PASSWD, *opts, "-b", str(path), user, password], check=True,
                   capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def pwfiles(tmp_path_factory):
    """Password files written by Debian's mosquitto_passwd, made once per session."""
    d = tmp_path_factory.mktemp("pw")
    main = d / "passwd"
    main.write_text("")
    mkpasswd(main, "alice", "s3cret")                    # $7$, 101 iterations
    mkpasswd(main, "bob", "hunter2", "-H", "sha512")     # $6$
    mkpasswd(main, "carol", "pw-c", "-I", "5000")
    other = d / "other"
    other.write_text("")
    mkpasswd(other, "dave", "d4ve")
    slow = d / "slow"
    slow.write_text("")
    mkpasswd(slow, "slow", "slowpw", "-I", "500000")    # a third of a second of CPU or more
    # PBKDF2 with 2e9 iterations: minutes of CPU, always longer than midge's 2 s wait for its
    # hashing threads at stop (no tool makes it: the salt and hash are just well-formed bytes)
    with open(str(slow), "a") as f:
        f.write("endless:$7$2000000000$%s$%s\n" % (base64.b64encode(b"s" * 12).decode(),
                                                   base64.b64encode(b"h" * 64).decode()))
    return {"main": str(main), "other": str(other), "slow": str(slow), "dir": d}


def connack_bytes(port, version, **kw):
    c = RawClient(port, version=version)
    try:
        c.send(M.connect(kw.pop("client_id", "c-%d" % version), version=version, **kw))
        return c.recv_raw()
    finally:
        c.close()


def accepted(raw, version):
    if version == 5:
        return raw[0] == 0x20 and raw[3] == 0  # CONNACK, reason Success (properties vary)
    return raw == ACCEPTED[version]


@pytest.fixture
def pw_broker(broker_factory, pwfiles):
    return broker_factory(anonymous=False,
                          extra=AS_ROOT + ["allow_anonymous false", "password_file %s" % pwfiles["main"]])


@pytest.mark.parametrize("version", [3, 4, 5])
def test_password_file_admits_right_passwords_and_refuses_the_rest(pw_broker, version):
    port = pw_broker.port
    for user, pw in (("alice", "s3cret"), ("bob", "hunter2"), ("carol", "pw-c")):
        raw = connack_bytes(port, version, username=user, password=pw)
        assert accepted(raw, version), (user, raw.hex())
    want = REFUSED[version]
    assert connack_bytes(port, version, username="alice", password="wrong") == want
    if IS_MIDGE:  # mosquitto hashes a password only up to its first NUL byte, and admits this
        assert connack_bytes(port, version, username="alice", password="s3cret\0x") == want
    assert connack_bytes(port, version, username="bob", password="s3cret") == want
    assert connack_bytes(port, version, username="mallory", password="s3cret") == want
    assert connack_bytes(port, version, username="alice") == want  # no password
    assert connack_bytes(port, version) == want                    # anonymous
    if version == 5:  # a password without a user name is anonymous
        assert connack_bytes(port, version, password="s3cret") == want


def test_anonymous_allowed_beside_a_password_file(broker_factory, pwfiles):
    """allow_anonymous true with a password file: anonymous clients get in, a user name is
    still checked."""
    b = broker_factory(extra=AS_ROOT + ["password_file %s" % pwfiles["main"]])
    assert connack_bytes(b.port, 4) == ACCEPTED[4]
    assert connack_bytes(b.port, 4, username="alice", password="s3cret") == ACCEPTED[4]
    assert connack_bytes(b.port, 4, username="alice", password="nope") == REFUSED[4]
    assert connack_bytes(b.port, 4, username="nobody", password="x") == REFUSED[4]


def test_without_password_file_allow_anonymous_false_refuses_user_names_too(broker_factory):
    b = broker_factory(anonymous=False, extra=["allow_anonymous false"])
    assert connack_bytes(b.port, 4, username="alice", password="s3cret") == REFUSED[4]
    assert connack_bytes(b.port, 5, username="alice", password="s3cret") == REFUSED[5]


def test_password_file_lines_read_as_mosquitto_reads_them(broker_factory, pwfiles, tmp_path):
    """Comments and lines without ':' are skipped, blanks around fields trimmed, bad hashes
    dropped with mosquitto's message, and a user on two lines gets the last good one."""
    good = open(pwfiles["main"]).read().splitlines()
    alice = next(l for l in good if l.startswith("alice:"))
    bob_hash = next(l for l in good if l.startswith("bob:")).split(":", 1)[1]
    carol_hash = next(l for l in good if l.startswith("carol:")).split(":", 1)[1]
    pw = tmp_path / "mixed"
    pw.write_text("\n".join([
        "# a comment: with a colon",
        "no colon here",
        "  bob  :  %s  " % bob_hash,           # trimmed on both sides
        "alice:$7$101$short$AAAA",             # bad salt: dropped
        alice,
        "alice:$9$abc$def",                    # unknown type: dropped, the line above stays
        "carol:%s" % bob_hash,                 # replaced by the next line
        "carol:%s" % carol_hash,
        "plain:secret",                        # a plain text password is no hash
        "dave:",
    ]) + "\n")
    b = broker_factory(anonymous=False, extra=AS_ROOT + ["allow_anonymous false", "password_file %s" % pw])
    assert connack_bytes(b.port, 4, username="bob", password="hunter2") == ACCEPTED[4]
    assert connack_bytes(b.port, 4, username="alice", password="s3cret") == ACCEPTED[4]
    assert connack_bytes(b.port, 4, username="carol", password="pw-c") == ACCEPTED[4]
    assert connack_bytes(b.port, 4, username="carol", password="hunter2") == REFUSED[4]
    assert connack_bytes(b.port, 4, username="plain", password="secret") == REFUSED[4]
    assert connack_bytes(b.port, 4, username="dave", password="") == REFUSED[4]
    log = b.log()
    assert "Error: Unable to decode password salt for user alice, removing entry." in log
    assert "Error: Invalid password hash type for user alice, removing entry." in log
    assert "Error: Invalid password hash type for user plain, removing entry." in log


def test_unreadable_password_file_stops_the_broker(tmp_path):
    from harness import run_broker_until_exit
    missing = tmp_path / "nope"
    rc, out = run_broker_until_exit(tmp_path, "listener 0 127.0.0.1\npassword_file %s\n"
                                    "user root\n" % missing)
    assert rc != 0
    assert 'Error: Unable to open pwfile "%s".' % missing in out
    if IS_MIDGE:
        assert 'Error opening password file "%s".' % missing in out


@pytest.mark.parametrize("version", [4, 5])
def test_clientid_prefixes(broker_factory, version):
    b = broker_factory(extra=["clientid_prefixes sec-"])
    assert accepted(connack_bytes(b.port, version, client_id="sec-1"), version)
    assert connack_bytes(b.port, version, client_id="other") == REFUSED[version]
    assert connack_bytes(b.port, version, client_id="se") == REFUSED[version]


def test_use_username_as_clientid(broker_factory, pwfiles):
    """The user name is the client id: a second login of the same user takes the session
    over whatever client id it sends; no user name, no entry."""
    b = broker_factory(extra=["use_username_as_clientid true"])
    assert connack_bytes(b.port, 4) == REFUSED[4]
    assert connack_bytes(b.port, 5) == REFUSED[5]
    first = RawClient(b.port)
    first.connect("id-one", username="alice", password="x")
    second = RawClient(b.port)
    second.connect("id-two", username="alice", password="x")
    first.expect_closed()  # taken over: both are "alice"
    second.send(M.pingreq())
    second.expect(M.PINGRESP)
    b.wait_log(r"New client connected from \S+ as alice \(p2")
    second.close()


def test_per_listener_settings(broker_factory, pwfiles):
    """Each listener its own allow_anonymous and password_file; a listener that says nothing
    is closed to anonymous clients (mosquitto 2's default)."""
    from harness import free_port
    p1, p2, p3 = free_port(), free_port(), free_port()
    b = broker_factory(anonymous=False, listener=False, port=p1, extra=AS_ROOT + [
        "per_listener_settings true",
        "listener %d 127.0.0.1" % p1,
        "allow_anonymous true",
        "listener %d 127.0.0.1" % p2,
        "password_file %s" % pwfiles["main"],
        "listener %d 127.0.0.1" % p3,
        "password_file %s" % pwfiles["other"],
        "allow_anonymous true",
    ])
    assert connack_bytes(p1, 4) == ACCEPTED[4]
    assert connack_bytes(p1, 4, username="alice", password="anything") == ACCEPTED[4]
    assert connack_bytes(p2, 4) == REFUSED[4]
    assert connack_bytes(p2, 4, username="alice", password="s3cret") == ACCEPTED[4]
    assert connack_bytes(p2, 4, username="dave", password="d4ve") == REFUSED[4]
    assert connack_bytes(p3, 4) == ACCEPTED[4]
    assert connack_bytes(p3, 4, username="dave", password="d4ve") == ACCEPTED[4]
    assert connack_bytes(p3, 4, username="alice", password="s3cret") == REFUSED[4]


def test_sighup_disconnects_removed_and_changed_users(broker_factory, pwfiles, tmp_path):
    """mosquitto 2.0 re-checks connected clients on a reload: a user removed from the file or
    whose password changed is disconnected; the others stay."""
    pw = tmp_path / "passwd"
    pw.write_text(open(pwfiles["main"]).read())
    b = broker_factory(anonymous=False, extra=AS_ROOT + ["allow_anonymous false", "password_file %s" % pw])
    alice = RawClient(b.port)
    alice.connect("a", username="alice", password="s3cret")
    bob = RawClient(b.port)
    bob.connect("b", username="bob", password="hunter2")
    carol = RawClient(b.port)
    carol.connect("c", username="carol", password="pw-c")
    subprocess.run([PASSWD, "-D", str(pw), "alice"], check=True, capture_output=True)
    mkpasswd(pw, "bob", "new-password")
    os.kill(b.pid, signal.SIGHUP)
    alice.expect_closed(timeout=10)
    bob.expect_closed(timeout=10)
    # carol stays: her worker re-checked before it reads her PINGREQ (the reload parks
    # every worker, and alice's close shows the re-check has begun)
    carol.send(M.pingreq())
    carol.expect(M.PINGRESP)
    assert connack_bytes(b.port, 4, username="bob", password="new-password") == ACCEPTED[4]
    assert connack_bytes(b.port, 4, username="alice", password="s3cret") == REFUSED[4]
    carol.close()


@pytest.mark.midge_only
@pytest.mark.threaded
@pytest.mark.single_thread
def test_slow_password_hash_does_not_stall_other_clients(broker_factory, pwfiles):
    """Two logins whose entry asks for 500,000 PBKDF2 rounds each are hashed off the event
    loop: a client of the same (only) worker gets twenty PINGRESPs before the first of
    those CONNACKs (with the hash on the worker, the pings wait behind it). mosquitto hashes on its one thread, so
    there the pings wait for the hashes (see bench/auth_stall for the numbers)."""
    b = broker_factory(extra=AS_ROOT + ["password_file %s" % pwfiles["slow"]])
    by = RawClient(b.port, timeout=60)
    by.connect("bystander")
    slow = []
    for i in range(2):
        c = RawClient(b.port, timeout=60)
        c.send(M.connect("slow%d" % i, username="slow", password="slowpw"))
        slow.append(c)
    for i in range(20):
        by.send(M.pingreq())
        by.expect(M.PINGRESP)
        for c in slow:  # none of the hashes is done yet
            assert not c.buf
            c.sock.setblocking(False)
            try:
                got = c.sock.recv(64)
            except BlockingIOError:
                got = None
            finally:
                c.sock.setblocking(True)
            assert got is None, "a slow login was answered before ping %d" % i
    for c in slow:  # and every parked login is admitted in the end
        assert c.expect(M.CONNACK, timeout=120).raw == ACCEPTED[4]
        c.close()
    by.close()


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (seconds)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.midge_only
@pytest.mark.threaded
def test_login_closed_or_stopped_while_hashing(broker_factory, pwfiles):
    """A client that hangs up while its password is hashed, and a broker stopped while a
    hash runs, leak nothing and exit cleanly (the fixture checks status and sanitizers).
    The endless user's hash outlasts the broker's wait for its hashing threads, every run:
    the process ends under that thread, and OpenSSL's exit handlers must not run under it
    (they freed its digest tables: ThreadSanitizer reported the race whenever a busy machine
    made the slow user's hash outlast the wait)."""
    b = broker_factory(extra=AS_ROOT + ["password_file %s" % pwfiles["slow"]])
    endless = RawClient(b.port)
    endless.send(M.connect("endless", username="endless", password="x"))
    # its hash is running once the broker has used half a second of CPU (at rest it uses
    # 0.07 s under ASan, 0.13 s under TSan in its first second): a sync point on CPU time,
    # which a busy machine only delays
    deadline = time.monotonic() + 60
    while cpu_seconds(b.pid) < 0.5:
        assert time.monotonic() < deadline, "the endless hash never started"
        time.sleep(0.05)
    gone = RawClient(b.port)
    gone.send(M.connect("gone", username="slow", password="slowpw"))
    gone.close()
    waiting = RawClient(b.port)
    waiting.send(M.connect("waiting", username="slow", password="wrong"))
    ok = RawClient(b.port)
    ok.connect("ok")
    ok.send(M.pingreq())
    ok.expect(M.PINGRESP)
    b.stop()  # while hashes run: asserts exit status 0 and a clean sanitizer report
    endless.close()
    waiting.close()
    ok.close()


def test_per_listener_acl_file(broker_factory, tmp_path):
    """per_listener_settings true: a listener's acl_file rules its own clients (what they may
    publish and what they receive); a listener without one leaves its clients unrestricted."""
    from harness import free_port
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite ok/#\n")
    pa, pb = free_port(), free_port()
    b = broker_factory(anonymous=False, listener=False, port=pa, extra=AS_ROOT + [
        "per_listener_settings true",
        "listener %d 127.0.0.1" % pa, "allow_anonymous true", "acl_file %s" % acl,
        "listener %d 127.0.0.1" % pb, "allow_anonymous true",
    ])
    sub_b = RawClient(pb)
    sub_b.connect("sub-b")
    sub_b.subscribe([("#", 0)])
    sub_a = RawClient(pa)
    sub_a.connect("sub-a")
    sub_a.subscribe([("#", 0)])
    pub_a = RawClient(pa)
    pub_a.connect("pub-a")
    pub_b = RawClient(pb)
    pub_b.connect("pub-b")
    # A's client may not write free/x: nobody gets it; ok/x is the sentinel
    pub_a.publish("free/x", b"1")
    pub_a.publish("ok/x", b"2")
    assert sub_b.recv_publish().topic == "ok/x"
    assert sub_a.recv_publish().topic == "ok/x"
    # B's client writes anything; A's subscriber reads only what A's rules grant
    pub_b.publish("free/y", b"3")
    pub_b.publish("ok/y", b"4")
    assert sub_b.recv_publish().topic == "free/y"
    assert sub_b.recv_publish().topic == "ok/y"
    assert sub_a.recv_publish().topic == "ok/y"
    for c in (sub_a, sub_b, pub_a, pub_b):
        c.close()
