"""Process helpers every test folder shares (test/ is on sys.path through test/conftest.py):
start a program with its output in a file and its stdin as asked, and stop it for sure.
Used by test/broker/lib/harness.py, test/interop/tool_helpers.py, test/cluster and
test/platform."""

import subprocess


def start(argv, out, stdin=None, stderr=subprocess.STDOUT, env=None, cwd=None):
    """Popen of argv with stdout into the open file out (stderr too, unless given another).
    stdin: None (/dev/null), bytes (written, then closed) or True (a pipe left open)."""
    p = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=stderr,
                         stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                         env=env, cwd=cwd)
    if isinstance(stdin, bytes):
        p.stdin.write(stdin)
        p.stdin.close()
    return p


def stop(p, timeout=10.0, sig=None):
    """Ends p if it still runs: SIGTERM (or sig), then SIGKILL after timeout seconds. Its exit
    status."""
    if p.poll() is None:
        if sig is None:
            p.terminate()
        else:
            p.send_signal(sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=timeout)
    return p.returncode
