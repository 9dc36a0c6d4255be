"""Fixtures shared by the pytest tests under test/: a real broker on a free loopback port.

The harness (which broker, the Broker process, checks) is test/broker/lib/harness.py; the
raw packet builder is test/mqtt_raw.py. Every test that uses `broker` / `broker_factory` /
`raw` runs with `threads 1` and `threads 2` (midge only; mosquitto has one thread and no
`threads` keyword). Stopping a midge broker checks its exit status and that its output
carries no sanitizer report, so every broker test is also a leak and race test.
Markers: threaded, slow, single_thread, midge_only, mosquitto_xfail(reason).
"""

import os
import sys

import pytest

TEST_DIR = os.path.dirname(os.path.abspath(__file__))
for _d in (TEST_DIR, os.path.join(TEST_DIR, "broker", "lib")):
    if _d not in sys.path:
        sys.path.insert(0, _d)

# re-exported: other test folders load this file by path and use these names
from harness import (IS_MIDGE, IS_MOSQUITTO, KIND, MIDGE_BIN, MIDGE_BUILD,  # noqa: E402,F401
                     MOSQUITTO_BIN, SANITIZER_PATTERNS, Broker, Proc, assert_broker_serves,
                     free_port, run_broker_until_exit)


def pytest_configure(config):
    config.addinivalue_line("markers", "threaded: exercises several clients at once; "
                            "also run under ThreadSanitizer (-m threaded)")
    config.addinivalue_line("markers", "slow: long-running (tens of seconds); still part of "
                            "the default suite")
    config.addinivalue_line("markers", "single_thread: run with `threads 1` only")
    config.addinivalue_line("markers", "two_threads: run with `threads 2` only (what it checks "
                            "happens between workers)")
    config.addinivalue_line("markers", "midge_only: behaviour midge has by design and "
                            "mosquitto does not (skipped against mosquitto)")
    config.addinivalue_line("markers", "mosquitto_xfail(reason): mosquitto deviates from the "
                            "spec here; expected to fail against mosquitto only")


def pytest_generate_tests(metafunc):
    if "threads" in metafunc.fixturenames:
        if not IS_MIDGE or metafunc.definition.get_closest_marker("single_thread"):
            values = [1]
        elif metafunc.definition.get_closest_marker("two_threads"):
            values = [2]
        else:
            values = [1, 2]
        metafunc.parametrize("threads", values, ids=["t%d" % v for v in values])


def pytest_collection_modifyitems(config, items):
    for item in items:
        if IS_MOSQUITTO and item.get_closest_marker("midge_only"):
            item.add_marker(pytest.mark.skip(reason="midge-only behaviour (by design)"))
        m = item.get_closest_marker("mosquitto_xfail")
        if IS_MOSQUITTO and m:
            reason = m.args[0] if m.args else m.kwargs.get("reason", "mosquitto deviates")
            item.add_marker(pytest.mark.xfail(reason="mosquitto 2.0.11: " + reason,
                                              strict=False))


@pytest.fixture
def broker_factory(tmp_path, threads):
    """broker_factory(extra=[...lines...]) -> started Broker; all stopped (and checked) at
    the end of the test."""
    started = []

    def make(extra=(), **kw):
        kw.setdefault("name", "broker%d" % len(started))
        b = Broker(tmp_path, threads=threads, extra=extra, **kw)
        started.append(b)
        return b

    yield make
    errors = []
    for b in started:
        try:
            b.stop()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture
def broker(broker_factory):
    return broker_factory()


@pytest.fixture
def procs(tmp_path):
    """procs(argv) -> Proc started now; every one is stopped at teardown."""
    started = []

    def start(argv, env=None):
        p = Proc(argv, str(tmp_path / ("proc%d.out" % len(started))), env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


@pytest.fixture
def raw(broker):
    """raw(client_id=None, version=4, **connect_kw) -> mqtt_raw.RawClient on `broker`.
    client_id None: no CONNECT is sent; otherwise CONNECT is sent, CONNACK checked (expect_rc,
    default 0) and kept as .connack. All are closed at teardown."""
    from mqtt_raw import RawClient
    made = []

    def make(client_id=None, version=4, port=None, rcvbuf=None, timeout=5.0, **kw):
        c = RawClient(port or broker.port, version=version, rcvbuf=rcvbuf, timeout=timeout)
        made.append(c)
        if client_id is not None:
            c.connack = c.connect(client_id, **kw)
        return c

    yield make
    for c in made:
        c.close()
