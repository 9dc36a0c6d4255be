"""midge_passwd beside Debian's mosquitto_passwd 2.0.11: the same flags, messages and exit
statuses; files each writes work in the other's broker (real connections with mosquitto_pub);
the interactive prompt asks twice without echo (driven through a pty)."""

import os
import pty
import select
import termios
import subprocess
import time

import pytest

from interop.tool_helpers import MOSQUITTO_PUB, run, tool

MOSQ_PASSWD = "/usr/bin/mosquitto_passwd"


def passwd(kind):
    return tool("midge_passwd") if kind == "midge" else MOSQ_PASSWD


def can_log_in(b, user, pw):
    rc, _, err = run([MOSQUITTO_PUB, "-p", b.port, "-t", "t", "-m", "x", "-u", user, "-P", pw])
    assert rc in (0, 5), err  # 5: Connection Refused: not authorised
    return rc == 0


@pytest.mark.parametrize("writer,reader", [("midge", "mosquitto"), ("mosquitto", "midge"),
                                           ("midge", "midge")])
def test_files_work_across_brokers(broker_of, tmp_path, writer, reader):
    """A file written (created, added to, changed, deleted from) by one tool logs in
    through the other broker: $7$ at the default and a chosen iteration count, and $6$."""
    pw = tmp_path / "passwd"
    w = passwd(writer)
    assert run([w, "-c", "-b", pw, "alice", "a-pw"])[0] == 0
    assert run([w, "-b", "-H", "sha512", pw, "bob", "b-pw"])[0] == 0
    assert run([w, "-b", "-I", "2000", pw, "carol", "c-pw"])[0] == 0
    assert run([w, "-b", pw, "dave", "old"])[0] == 0
    assert run([w, "-b", pw, "dave", "new"])[0] == 0  # changed in place
    assert run([w, "-b", pw, "erin", "e-pw"])[0] == 0
    assert run([w, "-D", pw, "erin"])[0] == 0
    lines = pw.read_text().splitlines()
    assert [l.split(":")[0] for l in lines] == ["alice", "bob", "carol", "dave"]
    assert lines[0].startswith("alice:$7$101$") and lines[1].startswith("bob:$6$")
    assert lines[2].startswith("carol:$7$2000$")
    extra = ["allow_anonymous false", "password_file %s" % pw]
    if reader == "mosquitto":
        extra.append("user root")  # else it drops to `mosquitto`, who cannot read tmp_path
    b = broker_of(reader, extra=extra)
    for user, good in (("alice", "a-pw"), ("bob", "b-pw"), ("carol", "c-pw"), ("dave", "new")):
        assert can_log_in(b, user, good), user
        assert not can_log_in(b, user, good + "x"), user
    assert not can_log_in(b, "dave", "old")
    assert not can_log_in(b, "erin", "e-pw")


def test_update_plain_text_file(broker_of, tmp_path):
    """-U hashes a plain text file in place, as mosquitto_passwd does."""
    pw = tmp_path / "plain"
    pw.write_text("alice:one\nbob : two \n")
    assert run([tool("midge_passwd"), "-U", pw])[0] == 0
    assert all(l.split(":")[1].startswith("$7$101$") for l in pw.read_text().splitlines())
    assert not os.path.exists(str(pw) + ".tmp")  # the backup goes once all went well
    b = broker_of("mosquitto", extra=["allow_anonymous false", "password_file %s" % pw,
                                      "user root"])
    assert can_log_in(b, "alice", "one") and can_log_in(b, "bob", "two")


def _normalise(text, kind):
    return text.replace("mosquitto_passwd", "PASSWD").replace("midge_passwd", "PASSWD")


ARG_CASES = [
    [],
    ["-c", "-D", "{f}", "u"],
    ["-c", "-U", "{f}"],
    ["-D", "-U", "{f}"],
    ["-b", "-D", "{f}", "u"],
    ["-H"],
    ["-H", "md5", "{f}", "u"],
    ["-I"],
    ["-I", "0", "-b", "{f}", "u", "p"],
    ["-I", "abc", "-b", "{f}", "u", "p"],
    ["-c", "{f}"],
    ["-c", "-b", "{f}", "u"],
    ["-D", "{f}"],
    ["-U"],
    ["-U", "{f}", "extra"],
    ["-b", "{f}", "u"],
    ["{f}"],
    ["-b", "{f}", "bad:name", "p"],
    ["-b", "{f}", "tab\tname", "p"],
    ["-D", "{missing}", "u"],
    ["-b", "{missing}", "u", "p"],
    ["-D", "{f}", "nobody"],
    ["-U", "{corrupt}"],
]


@pytest.mark.parametrize("args", ARG_CASES, ids=[" ".join(a) or "none" for a in ARG_CASES])
def test_messages_and_exit_statuses_match_mosquitto_passwd(tmp_path, args):
    out = {}
    for kind in ("mosquitto", "midge"):
        d = tmp_path / kind
        d.mkdir()
        f = d / "pw"
        f.write_text("alice:$6$mZn+wHWihJMWVYyr$vV/W8HFi9V8C/VO0/7Wxle1NWITIxP73K7071uPRkfh"
                     "drLSXvAOWETvyf3ASa50wxZnmm1foKFXFHc5kaW55Hw==\n")
        corrupt = d / "corrupt"
        corrupt.write_text("alice:x\nno-colon-here\n")
        argv = [a.format(f=f, missing=d / "nope", corrupt=corrupt) for a in args]
        rc, so, se = run([passwd(kind)] + argv)
        se = se.replace(str(d), "DIR")
        out[kind] = (rc, _normalise(se, kind), bool(so))
    assert out["midge"] == out["mosquitto"]


def test_corrupt_file_is_left_alone(tmp_path):
    """A line midge_passwd cannot split stops it before it writes anything. (mosquitto_passwd
    2.0.11 prints the same error but then adds the user and drops every line after the bad
    one: exit status 0 and a shorter file.)"""
    f = tmp_path / "pw"
    before = "alice:x\nno-colon-here\nbob:y\n"
    f.write_text(before)
    rc, _, err = run([tool("midge_passwd"), "-b", f, "carol", "p"])
    assert rc == 1
    assert err == "Error: Corrupt password file at line 2.\n"
    assert f.read_text() == before
    assert not os.path.exists(str(f) + ".tmp")


def _pty_session(argv, answers, timeout=20.0):
    """Runs argv on a pty, typing each answer after the next prompt ending in ': '.
    Returns (exit status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    shown = b""
    echo_off = []
    pending = list(answers)
    deadline = time.monotonic() + timeout
    status = None
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                shown += chunk
                if pending and shown.endswith(b": "):
                    # type only once the program has turned echo off (the prompt comes
                    # first): the terminal itself then shows whether anything echoes
                    while termios.tcgetattr(fd)[3] & termios.ECHO and time.monotonic() < deadline:
                        time.sleep(0.01)
                    echo_off.append(not termios.tcgetattr(fd)[3] & termios.ECHO)
                    os.write(fd, pending.pop(0) + b"\n")
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid:
                status = os.waitstatus_to_exitcode(st)
                while select.select([fd], [], [], 0.2)[0]:  # what it wrote before exiting
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    shown += chunk
                break
    finally:
        if status is None:
            try:
                _, st = os.waitpid(pid, 0)
                status = os.waitstatus_to_exitcode(st)
            except ChildProcessError:
                pass
        os.close(fd)
    assert all(echo_off), "a password was typed with echo on"
    return status, shown.decode("utf-8", "replace")


@pytest.mark.parametrize("answers,rc,msg", [
    ([b"pw-1", b"pw-1"], 0, None),
    ([b"pw-1", b"pw-2"], 2, "Error: Passwords do not match."),
    ([b""], 1, "Error: Empty password."),
], ids=["same", "differ", "empty"])
def test_prompt_twice_without_echo(tmp_path, answers, rc, msg):
    """Both tools on a terminal: "Password: ", then "Reenter password: ", the password never
    echoed, the same exit status and message; the file logs in with what was typed."""
    for kind in ("mosquitto", "midge"):
        f = tmp_path / ("pw-" + kind)
        got_rc, shown = _pty_session([passwd(kind), "-c", str(f), "alice"], answers)
        assert got_rc == rc, (kind, shown)
        assert shown.startswith("Password: "), (kind, shown)
        assert "pw-1" not in shown and "pw-2" not in shown, (kind, shown)
        if rc == 0:
            assert "Reenter password: " in shown
            assert f.read_text().startswith("alice:$7$101$")
        else:
            assert msg in shown, (kind, shown)
            assert not f.exists()


def test_prompted_password_logs_in(broker_of, tmp_path):
    f = tmp_path / "pw"
    f.write_text("")
    rc, shown = _pty_session([tool("midge_passwd"), str(f), "alice"], [b"typed", b"typed"])
    assert rc == 0, shown
    b = broker_of("midge", extra=["allow_anonymous false", "password_file %s" % f])
    assert can_log_in(b, "alice", "typed")
