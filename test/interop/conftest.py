"""Fixtures for the tool interop tests: midge_pub / midge_sub against Debian's mosquitto broker
and against midge, side by side with Debian's mosquitto_pub / mosquitto_sub.

  any_broker   a broker on a free loopback port, once as "mosquitto" and once as "midge"
               (skipped with the reason when $MIDGE_BUILD/bin/midge is missing)
  broker_of    broker_of(kind, extra=[conf lines], port=None): own config or port
  clients      clients(argv, stdin=None, cwd=None): client processes, stdout and stderr
               kept apart; all killed at teardown; a sanitizer report fails the test
"""

import os

import pytest

from interop.tool_helpers import (BROKER_KINDS, MIDGE_BROKER, Client, TestBroker,
                                  check_sanitizers)


@pytest.fixture
def broker_of(tmp_path):
    """broker_of(kind, extra=[...], name=None, port=None) -> started TestBroker; all stopped
    at teardown."""
    started = []

    def make(kind, extra=(), name=None, port=None):
        if kind == "midge" and not os.access(MIDGE_BROKER, os.X_OK):
            pytest.fail("midge broker not built at %s (make BUILD=...)" % MIDGE_BROKER)
        b = TestBroker(kind, tmp_path, extra, name, port)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture(params=BROKER_KINDS)
def any_broker(request, broker_of):
    return broker_of(request.param)


@pytest.fixture
def clients(tmp_path):
    """clients(argv, stdin=None) -> Client started now. At teardown every one is killed and
    the output of every midge program is checked for sanitizer reports."""
    started = []

    def start(argv, stdin=None, cwd=None):
        c = Client([str(a) for a in argv], tmp_path, len(started), stdin, cwd)
        started.append(c)
        return c

    yield start
    for c in started:
        c.kill()
    for c in started:
        check_sanitizers(c.err() + c.out(), c.argv[0])
