"""midge_db against files that Debian's mosquitto 2.0.11 wrote itself (mosq_state.py drives it
into a known state and stops it with SIGTERM), and against midge stores.

  dump     of a mosquitto.db names every record mosquitto was left with
  import   puts exactly that into midge's schema (checked with Python's sqlite3, not with
           midge_db), refuses a damaged file or a non-empty store and then changes nothing
  backup   copies a store while another connection keeps committing to it
"""

import os
import shutil
import sqlite3
import subprocess
import threading

import pytest

from harness import IS_MIDGE, MIDGE_BUILD, SANITIZER_PATTERNS

from tools import mosq_state

MIDGE_DB = os.path.join(MIDGE_BUILD, "bin", "midge_db")

pytestmark = pytest.mark.skipif(not IS_MIDGE, reason="midge_db is midge's tool")


def run(*args, ok=True):
    if not os.access(MIDGE_DB, os.X_OK):
        pytest.fail("midge_db not built at %s" % MIDGE_DB)
    p = subprocess.run([MIDGE_DB] + [str(a) for a in args], capture_output=True, timeout=60,
                       env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
    out, err = p.stdout.decode(), p.stderr.decode()
    for pat in SANITIZER_PATTERNS:
        assert pat not in err, err
    if ok:
        assert p.returncode == 0, "midge_db %s: exit %d\n%s%s" % (args, p.returncode, out, err)
    return p.returncode, out, err


@pytest.fixture(scope="session")
def mosq_db(tmp_path_factory):
    """(path of a mosquitto.db written by mosquitto, the queued messages it holds)."""
    d = tmp_path_factory.mktemp("mosquitto")
    return mosq_state.write_mosquitto_db(str(d))


def copy_db(mosq_db, tmp_path):
    dst = tmp_path / "mosquitto.db"
    shutil.copy(mosq_db[0], dst)
    return dst


def test_dump_mosquitto_db_written_by_mosquitto(mosq_db):
    _, out, _ = run("dump", mosq_db[0])
    assert "mosquitto persistence file, format version 6" in out
    assert "written at shutdown" in out
    for topic, (payload, qos) in mosq_state.EXPECTED["retained"].items():
        assert "retained message" in out and "'%s'" % topic in out
        assert "'%s' qos %d retain 1, %d bytes '%s'" % (topic, qos, len(payload),
                                                        payload.decode()) in out
    assert "Content Type 'text/plain', User Property 'k'='v'" in out
    assert "client 'sub311': session expiry never" in out
    assert "client 'sub5': session expiry 3600 s" in out
    assert "username 'alice'" in out and "username 'bob'" in out
    assert "subscription 'sub5' 'q/#' qos 1 no-local id 7" in out
    assert "subscription 'sub311' 'other/+' qos 1" in out
    assert "wait_for_pubcomp" in out and "wait_for_puback" in out
    assert "client message 'pub5' in:" in out and "wait_for_pubrel" in out


def test_import_maps_every_record(mosq_db, tmp_path):
    src = copy_db(mosq_db, tmp_path)
    dst = tmp_path / "midge.db"
    _, out, _ = run("import", src, dst)
    assert ("2 retained messages, 3 sessions, 3 subscriptions, 4 queued and 2 in-flight "
            "messages, 1 incoming QoS 2 awaiting PUBREL") in out
    db = sqlite3.connect(str(dst))
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("PRAGMA application_id").fetchone()[0] == 0x4d494447
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    retained = {bytes(t).decode(): (bytes(p), q) for t, p, q in
                db.execute("SELECT topic, payload, qos FROM retained")}
    assert retained == mosq_state.EXPECTED["retained"]
    # the 5.0 retained message keeps its properties, in wire form without the length
    props = db.execute("SELECT props FROM retained WHERE topic = CAST('r/v5' AS BLOB)").fetchone()[0]
    assert bytes(props) == b"\x03\x00\x0atext/plain" + b"\x26\x00\x01k\x00\x01v"

    sessions = {bytes(c).decode(): (sid, lvl, exp, at) for sid, c, lvl, exp, at in
                db.execute("SELECT sid, client_id, level, expiry, expire_at FROM sessions")}
    assert set(sessions) == set(mosq_state.EXPECTED["sessions"])
    for cid, (expiry, subs) in mosq_state.EXPECTED["sessions"].items():
        sid, level, exp, at = sessions[cid]
        assert exp == expiry
        assert level == (4 if cid == "sub311" else 5)
        assert (at is None) == (expiry == 0xFFFFFFFF)
        rows = {bytes(f).decode(): (o & 3, o & ~3, i) for f, o, i in
                db.execute("SELECT filter, opts, sub_id FROM subs WHERE sid = ?", (sid,))}
        assert rows == subs
    # mosquitto's client chunks carry the user names: each session keeps its own
    names = {bytes(c).decode(): u and bytes(u).decode() for c, u in
             db.execute("SELECT client_id, username FROM sessions")}
    assert names == mosq_state.EXPECTED["usernames"]
    # ... and 2.0.11 wrote bob's name again (and the memory after it) into pub5's, which has
    # none (mosquitto's bug, fixed in 2.0.16): read as no name, and said
    assert "1 sessions have no user name: mosquitto before 2.0.16" in out

    for cid, want in mosq_db[1].items():
        sid = sessions[cid][0]
        rows = db.execute("SELECT m.topic, m.payload, q.qos, q.state, q.mid, q.sub_ids FROM queue q "
                          "JOIN msgs m ON m.id = q.msg WHERE q.sid = ? ORDER BY q.msg",
                          (sid,)).fetchall()
        got = [(bytes(t).decode(), bytes(p), qos, ["queued", "sent", "pubrec"][st])
               for t, p, qos, st, _, _ in rows]
        assert got == want
        for _, _, _, st, mid, ids in rows:
            assert (mid == 0) == (st == 0)
            # sub5's subscription carries identifier 7; mosquitto stores it per message
            assert ids == (b"\x00\x00\x00\x07" if cid == "sub5" else None)
    # a body is stored once however many sessions queue it
    assert db.execute("SELECT count(*) FROM msgs WHERE topic = CAST('q/2' AS BLOB)").fetchone()[0] == 1
    inq2 = db.execute("SELECT i.mid, m.topic, m.payload FROM inq2 i JOIN msgs m ON m.id = i.msg "
                      "WHERE i.sid = ?", (sessions["pub5"][0],)).fetchall()
    assert [(mid, bytes(t), bytes(p)) for mid, t, p in inq2] == [(4, b"q/4", b"four")]
    db.close()

    _, dump, _ = run("dump", dst)
    assert "session 'sub311': level 4, expiry never" in dump
    assert "username 'alice'" in dump
    assert "queue: message 1 'q/1' qos 2, PUBREC received m1" in dump
    assert "incoming QoS 2 m4 awaiting PUBREL" in dump


def test_import_refuses_a_store_with_state(mosq_db, tmp_path):
    src = copy_db(mosq_db, tmp_path)
    dst = tmp_path / "midge.db"
    run("import", src, dst)
    before = dst.read_bytes()
    rc, _, err = run("import", src, dst, ok=False)
    assert rc == 1
    assert "already holds sessions" in err
    assert dst.read_bytes() == before


def test_import_refuses_damaged_file_and_creates_nothing(mosq_db, tmp_path):
    data = open(mosq_db[0], "rb").read()
    src = tmp_path / "cut.db"
    src.write_bytes(data[:len(data) - 5])
    dst = tmp_path / "midge.db"
    rc, _, err = run("import", src, dst, ok=False)
    assert rc == 1
    assert "truncated" in err and "nothing imported" in err
    assert not dst.exists()
    src.write_bytes(b"not a database at all")
    rc, _, err = run("dump", src, ok=False)
    assert rc == 1 and "not a mosquitto persistence file" in err


def test_backup_while_another_connection_commits(mosq_db, tmp_path):
    src = copy_db(mosq_db, tmp_path)
    store = tmp_path / "midge.db"
    run("import", src, store)
    stop = threading.Event()
    commits = [0]

    def writer():
        w = sqlite3.connect(str(store), timeout=30)
        w.execute("PRAGMA journal_mode=WAL")
        i = 0
        while not stop.is_set() and i < 100000:
            with w:  # one transaction: two rows that only exist together
                w.execute("INSERT INTO retained (topic, payload, qos) VALUES (?, ?, 0)",
                          (b"bk/a/%d" % i, b"x" * 100))
                w.execute("INSERT INTO retained (topic, payload, qos) VALUES (?, ?, 0)",
                          (b"bk/b/%d" % i, b"y" * 100))
            i += 1
            commits[0] = i
        w.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        while commits[0] < 50:  # the writer is under way
            threading.Event().wait(0.01)
        copies = []
        for k in range(3):
            dst = tmp_path / ("backup%d.db" % k)
            _, out, _ = run("backup", store, dst)
            assert "integrity ok" in out
            copies.append(dst)
    finally:
        stop.set()
        t.join(60)
    assert commits[0] > 50
    for dst in copies:
        db = sqlite3.connect(str(dst))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        a = db.execute("SELECT count(*) FROM retained WHERE topic >= CAST('bk/a/' AS BLOB) "
                       "AND topic < CAST('bk/b/' AS BLOB)").fetchone()[0]
        b = db.execute("SELECT count(*) FROM retained WHERE topic >= CAST('bk/b/' AS BLOB) "
                       "AND topic < CAST('bk/c/' AS BLOB)").fetchone()[0]
        assert a == b and a >= 50  # a whole commit or none: never half of one
        assert db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 3
        db.close()
    rc, _, err = run("backup", store, copies[0], ok=False)
    assert rc == 1 and "never overwrites" in err


def test_import_then_midge_resumes_the_sessions(mosq_db, tmp_path):
    """The whole switch: mosquitto wrote the file, midge_db imports it, midge starts on the
    result; each client comes back to its session as mosquitto left it."""
    from harness import Broker
    from mqtt_raw import (PUBACK, PUBCOMP, PUBLISH, PUBREL, RawClient, P_CONTENT_TYPE,
                          P_SESSION_EXPIRY, P_SUBSCRIPTION_ID, puback, pubcomp, pubrec, pubrel)
    src = copy_db(mosq_db, tmp_path)
    run("import", src, tmp_path / "midge.db")
    b = Broker(tmp_path, threads=1, extra=["persistence true"], name="switched")
    try:
        # 3.1.1, clean session 0: q/1 had its PUBREC, so the PUBREL comes again; then the
        # queue in order, and its subscriptions still route
        s3 = RawClient(b.port, version=4)
        assert s3.connect("sub311", clean=False).session_present == 1
        p = s3.expect(PUBREL)
        assert p.pid == 1
        s3.send(pubcomp(1))
        got = []
        for _ in range(2):
            p = s3.expect(PUBLISH)
            got.append((p.topic, p.payload, p.qos))
            if p.qos == 1:
                s3.send(puback(p.pid))
            else:
                s3.send(pubrec(p.pid))
                assert s3.expect(PUBREL).pid == p.pid
                s3.send(pubcomp(p.pid))
        assert got == [("q/2", b"two", 1), ("q/3", b"three", 2)]

        # 5.0 with session expiry: q/1 was sent and never acknowledged: again, with DUP;
        # every message carries the subscription identifier 7
        s5 = RawClient(b.port, version=5)
        assert s5.connect("sub5", version=5, clean=False,
                          properties=[(P_SESSION_EXPIRY, 3600)]).session_present == 1
        got = []
        for _ in range(3):
            p = s5.expect(PUBLISH)
            assert p.props.all(P_SUBSCRIPTION_ID) == [7]
            got.append((p.topic, p.payload, p.qos, p.dup))
            s5.send(puback(p.pid, version=5))
        assert got == [("q/1", b"one", 1, True), ("q/2", b"two", 1, False),
                       ("q/3", b"three", 1, False)]

        # the publisher's QoS 2 message awaiting PUBREL: released now, delivered once to both
        pub = RawClient(b.port, version=5)
        assert pub.connect("pub5", version=5, clean=False,
                           properties=[(P_SESSION_EXPIRY, 3600)]).session_present == 1
        pub.send(pubrel(4, version=5))
        assert pub.expect(PUBCOMP).pid == 4
        p = s5.expect(PUBLISH)
        assert (p.topic, p.payload) == ("q/4", b"four")
        s5.send(puback(p.pid, version=5))
        p = s3.expect(PUBLISH)
        assert (p.topic, p.payload) == ("q/4", b"four")
        s3.send(pubrec(p.pid))
        assert s3.expect(PUBREL).pid == p.pid
        s3.send(pubcomp(p.pid))

        # retained values, with their 5.0 properties
        r = RawClient(b.port, version=5)
        r.connect("reader", version=5)
        r.subscribe([("r/#", 1)], version=5)
        got = {}
        for _ in range(2):
            p = r.expect(PUBLISH)
            assert p.retain
            got[p.topic] = (p.payload, p.props.get(P_CONTENT_TYPE))
            if p.qos:
                r.send(puback(p.pid, version=5))
        assert got == {"r/plain": (b"hello", None), "r/v5": (b"with props", "text/plain")}
        for c in (s3, s5, pub, r):
            c.disconnect()
    finally:
        b.stop()


def test_backup_while_midge_writes(tmp_path):
    """midge commits a retained message per acknowledged PUBLISH while midge_db backs the
    store up three times: each copy is whole and holds a prefix of the acknowledged messages
    (the store as of one commit, never half of one)."""
    from harness import Broker
    from mqtt_raw import RawClient
    b = Broker(tmp_path, threads=1, extra=["persistence true"], name="live", verbose=False)
    stop = threading.Event()
    acked = [0]
    errors = []

    def publisher():
        try:
            c = RawClient(b.port, version=4)
            c.connect("writer")
            i = 0
            while not stop.is_set() and i < 20000:
                c.publish("bk/%06d" % i, b"v" * 64, qos=1, pid=i % 65535 + 1, retain=True)
                i += 1
                acked[0] = i
            c.disconnect()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=publisher)
    t.start()
    copies = []
    try:
        while acked[0] < 100 and t.is_alive():
            threading.Event().wait(0.01)
        for k in range(3):
            dst = tmp_path / ("live%d.db" % k)
            _, out, _ = run("backup", tmp_path / "midge.db", dst)
            assert "integrity ok" in out
            copies.append((dst, acked[0]))
            # dump opens the live store read-only: it reads while midge writes
            _, out, _ = run("dump", tmp_path / "midge.db")
            assert "midge store, schema version 2" in out and "retained 'bk/000000'" in out
    finally:
        stop.set()
        t.join(60)
        b.stop()
    assert not errors, errors
    for dst, seen in copies:
        db = sqlite3.connect(str(dst))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        topics = sorted(int(bytes(r[0])[3:]) for r in db.execute("SELECT topic FROM retained"))
        db.close()
        assert topics == list(range(len(topics)))  # a prefix: commits in order, none halved
        assert len(topics) >= 100
