"""Free loopback ports for the brokers and peers that tests start, unique across every test
process on the machine.

Binding port 0 and closing the socket (the usual trick) leaves a window in which another
process gets the same number: with pytest-xdist running two workers, or two suites side by
side, two brokers then race for one port, and a test may even talk to the other test's broker.
So a port is claimed: a file named after it is created with O_EXCL under one directory, holding
the claiming process's pid, and stays claimed until that process exits (a test may stop a
broker and start it again on the same port). A claim whose process is gone is taken over.
Ports come from 20000-32767, below Linux's ephemeral range (32768-60999), so the kernel never
hands one of them to an outgoing connection either.
"""

import atexit
import os
import random
import socket
import tempfile
import time

LOW, HIGH = 20000, 32767
DIR = os.path.join(tempfile.gettempdir(), "midge-test-ports")
_claimed = []
_rng = random.Random()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(path):
    try:
        with open(path) as f:
            pid = int(f.read().strip() or "0")
    except (OSError, ValueError):
        return False  # being written right now, or unreadable: leave it
    return pid > 0 and pid != os.getpid() and not _alive(pid)


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _release():
    for path in _claimed:
        try:
            os.unlink(path)
        except OSError:
            pass


atexit.register(_release)


def free_port():
    os.makedirs(DIR, exist_ok=True)
    for _ in range(4000):
        port = _rng.randint(LOW, HIGH)
        path = os.path.join(DIR, str(port))
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _stale(path):
                try:
                    os.unlink(path)
                except OSError:
                    pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        if _bindable(port):
            _claimed.append(path)
            return port
        os.unlink(path)  # somebody outside the tests has it
    raise RuntimeError("no free loopback port in %d-%d after 4000 tries" % (LOW, HIGH))


def wait_port(port, timeout=5.0, host="127.0.0.1"):
    """True once something accepts connections on port (a broker started by a test), False
    after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
