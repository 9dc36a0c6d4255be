"""Issue 5: the broker raises its open-file soft limit to the hard limit at start and logs how
many connections it can hold (mosquitto does neither: midge only)."""

import re
import resource
import subprocess
import time

import pytest

from harness import IS_MIDGE, MIDGE_BIN, SANITIZER_PATTERNS, broker_env, free_port

pytestmark = pytest.mark.skipif(not IS_MIDGE, reason="midge-only behaviour (by design)")


def test_soft_limit_raised_and_logged(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # start below the hard limit whatever it is here, so there is always something to raise
    start = 1024 if hard > 2048 else hard // 4
    port = free_port()
    conf = tmp_path / "m.conf"
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\nthreads 1\n" % port)
    log = tmp_path / "m.log"
    with open(log, "wb") as f:
        p = subprocess.Popen(["prlimit", "--nofile=%d:%d" % (start, hard), MIDGE_BIN,
                              "-c", str(conf)], stdout=f, stderr=subprocess.STDOUT, env=broker_env())
    try:
        text = ""
        for _ in range(100):
            text = log.read_text()
            if "client connections" in text:
                break
            time.sleep(0.05)
        m = re.search(r"Open-file limit raised from %d to (\d+): room for about (\d+) "
                      r"client connections\." % start, text)
        assert m, text
        assert int(m.group(1)) == hard
        assert 0 < int(m.group(2)) < hard and int(m.group(2)) > hard - 200
        limits = open("/proc/%d/limits" % p.pid).read()
        row = [l for l in limits.splitlines() if l.startswith("Max open files")][0]
        assert row.split()[3:5] == [str(hard), str(hard)], row
    finally:
        p.terminate()
        rc = p.wait(10)
    text = log.read_text()
    assert rc == 0, text
    assert not any(pat in text for pat in SANITIZER_PATTERNS), text
