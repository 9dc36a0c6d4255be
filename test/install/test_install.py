"""`make install` (issue 4): headers, static and shared libraries, the pkg-config file, the
binaries and their man pages land under DESTDIR/PREFIX, and a program built only from what was
installed (via pkg-config) talks to a real broker (Debian's mosquitto) on a free port."""

import os
import socket
import subprocess
import time

import pytest
import ports  # noqa: E402  (test/ports.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "/usr/local"

PROGRAM = r'''
#include <stdio.h>
#include <string.h>
#include <midge/midge.h>

static int got;

static void on_message(midge_client *c, void *ud, const midge_message *m)
{
	printf("%s, %s\n", m->topic, (const char *)m->payload);
	got = 1;
}

int main(int argc, char **argv)
{
	int port = atoi(argv[1]);
	midge_client *c = midge_client_new("install-test", true, NULL, MIDGE_PROTOCOL_V311,
	                                   MIDGE_TRANSPORT_TCP);
	midge_on_message_set(c, on_message);
	if (midge_connect(c, "127.0.0.1", port, 60) != MIDGE_OK)
		return 1;
	if (midge_subscribe(c, "room/temp", 1) <= 0)
		return 2;
	for (int i = 0; i < 20 && !got; i++) {
		if (i == 2)
			midge_publish(c, "room/temp", "23", 2, 1, false, NULL);
		midge_loop(c, 100);
	}
	midge_disconnect(c);
	midge_client_free(c);
	return got ? 0 : 3;
}
'''


free_port = ports.free_port  # claimed across processes: test/ports.py


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["make", "-s", "install", "DESTDIR=%s" % dest, "PREFIX=%s" % PREFIX],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest


@pytest.fixture
def mosquitto(tmp_path):
    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\n" % port)
    p = subprocess.Popen(["/usr/sbin/mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    p.terminate()
    p.wait(10)


def test_files_installed(installed):
    root = installed / PREFIX.lstrip("/")
    for f in ["bin/midge", "bin/midge_pub", "bin/midge_sub", "include/midge/midge.h",
              "lib/libmidge.a", "lib/libmidge.so.0", "lib/libmidge.so",
              "lib/pkgconfig/midge.pc", "share/man/man1/midge_pub.1",
              "share/man/man1/midge_sub.1", "share/man/man3/libmidge.3",
              "share/man/man5/midge.conf.5",
              "share/man/man8/midge.8"]:
        assert (root / f).exists(), f
    pc = (root / "lib/pkgconfig/midge.pc").read_text()
    assert "prefix=%s\n" % PREFIX in pc and "-lmidge" in pc


def test_web_page_installed(installed):
    """The web page (web/, built into build/www) is installed whole: index.html and the two
    bundled files it loads, nothing fetched from elsewhere."""
    import re
    www = installed / PREFIX.lstrip("/") / "share/midge/www"
    html = (www / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(r for r in refs if not r.startswith("data:")) == ["app.css", "app.js"], refs
    for r in ("app.css", "app.js"):
        assert (www / r).stat().st_size > 0, r


def pkg_config(installed, *args):
    env = dict(os.environ, PKG_CONFIG_PATH=str(installed / PREFIX.lstrip("/") / "lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=str(installed))
    r = subprocess.run(["pkg-config", *args, "midge"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


@pytest.mark.parametrize("link", ["shared", "static"])
def test_program_built_from_installed_files(installed, mosquitto, tmp_path, link):
    src = tmp_path / "prog.c"
    src.write_text("#include <stdlib.h>\n" + PROGRAM)
    exe = tmp_path / "prog"
    flags = pkg_config(installed, "--cflags", "--libs", *(["--static"] if link == "static" else []))
    if link == "static":
        libdir = installed / PREFIX.lstrip("/") / "lib"
        flags = [f for f in flags if f != "-lmidge"] + [str(libdir / "libmidge.a"), "-lpthread",
                                                        "-lssl", "-lcrypto"]
    r = subprocess.run(["cc", "-Wall", "-Werror", str(src), "-o", str(exe), *flags],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, LD_LIBRARY_PATH=str(installed / PREFIX.lstrip("/") / "lib"))
    r = subprocess.run([str(exe), str(mosquitto)], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "room/temp, 23\n"
    if link == "shared":
        ldd = subprocess.run(["ldd", str(exe)], env=env, capture_output=True, text=True).stdout
        assert "libmidge.so.0" in ldd


def test_tools_built_from_installed_files_only(installed, mosquitto, tmp_path):
    """midge_pub and midge_sub use the public API only (issue 14): their sources, copied
    away from the source tree so proto/ and client/ cannot be reached, build against the
    installed <midge/midge.h> and libmidge.so alone, and then talk to a real broker."""
    import shutil
    src = tmp_path / "src"
    for d in ["common", "midge_pub", "midge_sub"]:
        shutil.copytree(os.path.join(ROOT, "tools", d), src / "tools" / d)
    flags = pkg_config(installed, "--cflags", "--libs")
    exes = {}
    for tool in ["midge_pub", "midge_sub"]:
        exe = tmp_path / tool
        # one platform file each, as the Makefile picks them (os_win.c is the Windows build's)
        files = sorted(str(p) for p in (src / "tools" / "common").glob("*.c")
                       if not p.name.startswith("os_") or p.name == "os_posix.c")
        files += sorted(str(p) for p in (src / "tools" / tool).glob("*.c"))
        r = subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror", "-I", str(src),
                            *files, "-o", str(exe), *flags, "-lpthread"],
                           capture_output=True, text=True, cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        exes[tool] = str(exe)
    env = dict(os.environ, LD_LIBRARY_PATH=str(installed / PREFIX.lstrip("/") / "lib"))
    ldd = subprocess.run(["ldd", exes["midge_sub"]], env=env, capture_output=True,
                         text=True).stdout
    assert "libmidge.so.0 => %s" % (installed / PREFIX.lstrip("/") / "lib") in ldd, ldd
    # -D and -T go through the public property and topic lookups
    sub = subprocess.Popen([exes["midge_sub"], "-p", str(mosquitto), "-V", "5", "-t", "room/#",
                            "-T", "room/skip", "-C", "1", "-v", "-d", "-W", "20",
                            "-D", "subscribe", "user-property", "k", "v"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        line = ""
        while "received SUBACK" not in line and time.monotonic() < deadline:
            line = sub.stdout.readline()
            assert line, sub.stderr.read()
        for topic, msg in [("room/skip", "no"), ("room/temp", "23")]:
            r = subprocess.run([exes["midge_pub"], "-p", str(mosquitto), "-V", "5", "-t", topic,
                                "-m", msg, "-q", "1", "-D", "publish", "content-type", "text"],
                               env=env, capture_output=True, text=True, timeout=20)
            assert r.returncode == 0, r.stderr
        out, err = sub.communicate(timeout=20)
    finally:
        sub.kill()
        sub.wait()
    assert sub.returncode == 0, err
    assert [ln for ln in out.splitlines() if ln.startswith("room/")] == ["room/temp 23"]
    r = subprocess.run([exes["midge_pub"], "-t", "a", "-m", "x", "-V", "5", "-D", "publish",
                        "subscription-identifier", "1"], env=env, capture_output=True, text=True)
    assert r.returncode == 1
    assert "subscription-identifier property not allowed for publish" in r.stderr
