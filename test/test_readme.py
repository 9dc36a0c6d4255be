"""README.md says what exists: every program, file, folder, make target and configuration
keyword it names is checked here against the tree, the release build (`make`, which the README
names as build/) and the broker's own config parser. A name this file cannot classify fails
the test, so a new claim in the README gets a check (or an entry in WORDS, if it names
something that is not ours: a topic, a payload, the lecture's file)."""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BUILD = os.path.join(ROOT, "build")  # the README's paths are the default build's

# Named in the README but not ours to check: topics, payloads, the lecture's config file.
WORDS = {"23", "36.5", "letter", "command", "start", "stop", "jpeg", "room/temp, 23", "mos.conf"}
# Debian's programs the README tells the user to run (installed by scripts/install-deps).
EXTERNAL = {"mosquitto", "mosquitto_sub", "mosquitto_pub", "mosquitto_passwd", "apt-get"}


def readme():
    with open(README) as f:
        return f.read()


def fenced_blocks(text):
    return re.findall(r"^```\w*\n(.*?)^```", text, flags=re.S | re.M)


def prose(text):
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def indented_blocks(text):
    """Runs of lines indented by four spaces, outside ``` blocks, without trailing comments."""
    blocks, cur = [], []
    for line in prose(text).split("\n") + [""]:
        if line.startswith("    ") and line.strip():
            cur.append(line[4:])
        elif cur and not line.strip():
            blocks.append(cur)
            cur = []
        elif cur:
            blocks.append(cur)
            cur = []
    return blocks


def inline_names(text):
    return sorted(set(re.findall(r"`([^`\n]+)`", prose(text))))


def executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def make_dry_run(target, *args):
    r = subprocess.run(["make", "-n", "--no-print-directory", target, *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "README names `make %s`: %s" % (target, r.stderr)
    return r.stdout


def in_header(name):
    with open(os.path.join(ROOT, "include", "midge", "midge.h")) as f:
        return re.search(r"\b%s\b" % re.escape(name), f.read()) is not None


def program_path(name):
    """Where the release build puts a program the README names by its bare name."""
    if os.path.exists(os.path.join(ROOT, "examples", name + ".c")):
        return os.path.join(BUILD, "bin", "examples", name)
    return os.path.join(BUILD, "bin", name)


def check_path(p):
    """A file or folder named as a path: in the tree, or (build/...) in the release build."""
    p = p.rstrip("/") or p
    if p.startswith("<") and p.endswith(">"):
        p = os.path.join("include", p[1:-1])
    cands = [os.path.join(ROOT, p), os.path.join(ROOT, "test", p)]  # "unit/" in test/'s row
    assert any(os.path.exists(c) for c in cands), "README names %s: it does not exist" % p
    if p.startswith("build/bin/"):
        assert executable(os.path.join(ROOT, p)), "README names %s: not a program" % p


def looks_like_path(name):
    return ("/" in name or re.search(r"\.(c|h|md|conf|[158])$", name)) and " " not in name


def check_name(name, text):
    """One backticked name of the README's prose: returns what kind it was, or fails."""
    words = name.split()
    if name in WORDS:
        return "word"
    if words[0] == "make":
        targets = [w for w in words[1:] if "=" not in w] or ["all"]
        for t in targets:
            make_dry_run(t, *[w for w in words[1:] if "=" in w])
        return "make target"
    if words[0] == "cc":
        return "compile command"  # test_c_program_builds_as_the_readme_says, test/install
    if words[0] == "man":
        check_path(words[-1])
        return "path"
    if words[0] in EXTERNAL:
        assert shutil.which(words[0]) or os.path.exists("/usr/sbin/" + words[0]), words[0]
        return "external"
    if words[0].startswith("build/"):
        check_path(words[0])
        return "path"
    if looks_like_path(name):
        check_path(name)
        return "path"
    if re.fullmatch(r"midge\w*", name) or os.path.exists(os.path.join(ROOT, "examples",
                                                                      name + ".c")):
        assert executable(program_path(name)), "README names %s: %s is not built" % (
            name, program_path(name))
        return "program"
    if name == "libmidge":
        for f in ["libmidge.a", "libmidge.so"]:
            assert os.path.exists(os.path.join(BUILD, "lib", f)), f
        return "library"
    # paho's names, which the README says libmidge has too: Client -> midge_client,
    # on_connect -> midge_on_connect_set, loop_forever -> midge_loop_forever
    if re.fullmatch(r"[A-Za-z_]+", name):
        assert any(in_header(c) for c in ["midge_" + name.lower(), "midge_%s_set" % name]), (
            "README says libmidge has paho's %s: no midge_%s in midge.h" % (name, name.lower()))
        return "api"
    pytest.fail("README names `%s`: test_readme.py does not know what it is (add a check, or "
                "put it in WORDS if it is not ours)" % name)


@pytest.fixture(scope="module")
def built():
    missing = [p for p in ["bin/midge", "lib/libmidge.a"] if not os.path.exists(
        os.path.join(BUILD, p))]
    if missing:
        pytest.fail("the release build is missing %s: run make" % missing)


def test_every_backticked_name_exists(built):
    text = readme()
    kinds = {name: check_name(name, text) for name in inline_names(text)}
    # the check is not vacuous: the README's tools, folders and targets were all seen
    for name, kind in [("midge_sub", "program"), ("sensor", "program"), ("proto/", "path"),
                       ("make run", "make target"), ("libmidge", "library"),
                       ("on_message", "api")]:
        assert kinds.get(name) == kind, (name, kinds.get(name))


def test_commands_in_code_blocks_exist(built):
    """The indented blocks: commands run what exists; `make run` is the broker command the
    README gives beside it; the version the sample output shows is the one built."""
    blocks = indented_blocks(readme())
    commands = [ln.split("#")[0].split() for b in blocks for ln in b
                if ln.split()[0] in ("make", "#") or ln.startswith("build/") or
                ln.split()[0] in EXTERNAL]
    commands = [c for c in commands if c]
    assert len(commands) >= 5, commands
    for c in commands:
        if c[0] == "make":
            make_dry_run(*c[1:])
        elif c[0].startswith("build/"):
            check_path(c[0])
        else:
            assert shutil.which(c[0]), c[0]
    assert "build/bin/midge -v -c midge.conf" in make_dry_run("run")
    assert "scripts/install-deps" in make_dry_run("run")
    assert "scripts/install-deps" in make_dry_run("test")
    shown = [m for b in blocks for ln in b for m in re.findall(r"midge version (\S+) ", ln)]
    with open(os.path.join(ROOT, "Makefile")) as f:
        version = re.search(r"^VERSION\s*:?=\s*(\S+)", f.read(), flags=re.M).group(1)
    assert shown == [version]


def test_make_test_summary_is_what_run_tests_prints():
    quoted = re.search(r'ends with\s*\n?\s*#?\s*"([^"]+)"', readme()).group(1)
    pattern = re.escape(quoted).replace("N", r"\$\w+")
    with open(os.path.join(ROOT, "scripts", "run-tests")) as f:
        assert re.search(r'^echo "%s"$' % pattern, f.read(), flags=re.M), quoted


def test_config_keywords_are_accepted(built, tmp_path):
    """The config lines the README shows are midge.conf's, and midge --test-config accepts
    them (a misspelt keyword does fail the same check)."""
    blocks = [b for b in indented_blocks(readme())
              if all(re.match(r"[a-z_]+ \S", ln) for ln in b)
              and b[0].split()[0] not in ("make", *EXTERNAL)]
    assert len(blocks) == 1, blocks
    with open(os.path.join(ROOT, "midge.conf")) as f:
        conf_lines = f.read().split("\n")
    for ln in blocks[0]:
        assert ln in conf_lines, "README shows %r, midge.conf does not have it" % ln
    midge = os.path.join(BUILD, "bin", "midge")
    for lines, ok in [(blocks[0], True), (blocks[0] + ["allow_anonymus true"], False)]:
        conf = tmp_path / "readme.conf"
        conf.write_text("\n".join(lines) + "\n")
        r = subprocess.run([midge, "--test-config", "-c", str(conf)], capture_output=True,
                           text=True, timeout=30)
        assert (r.returncode == 0) == ok, (lines, r.stdout, r.stderr)


def test_c_program_builds_as_the_readme_says(built, tmp_path):
    """The C program, compiled with the README's command line, against the tree."""
    text = readme()
    progs = [b for b in fenced_blocks(text) if "int main" in b]
    assert len(progs) == 1
    cmd = re.search(r"`(cc prog\.c -I[^`]*)`", text).group(1).split()
    (tmp_path / "prog.c").write_text(progs[0])
    cmd = [str(tmp_path / "prog.c") if w == "prog.c" else
           os.path.join(ROOT, w) if w.startswith("build/") else
           "-I" + os.path.join(ROOT, w[2:]) if w.startswith("-I") else w for w in cmd]
    r = subprocess.run(cmd + ["-Wall", "-Werror", "-Wno-unused-parameter", "-o",
                              str(tmp_path / "prog")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, (cmd, r.stderr)
    assert executable(str(tmp_path / "prog"))
