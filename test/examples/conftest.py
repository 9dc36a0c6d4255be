"""Fixtures for the tests of the lecture's programs (examples/): the same brokers and client
processes as test/interop (see test/interop/tool_helpers.py)."""

import os

import pytest

from interop.tool_helpers import (BROKER_KINDS, MIDGE_BROKER, Client, TestBroker,
                                  check_sanitizers)


@pytest.fixture
def ex_broker_of(tmp_path):
    started = []

    def make(kind, extra=(), name=None):
        if kind == "midge" and not os.access(MIDGE_BROKER, os.X_OK):
            pytest.fail("midge broker not built at %s (make BUILD=...)" % MIDGE_BROKER)
        b = TestBroker(kind, tmp_path, extra, name)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture(params=BROKER_KINDS)
def ex_broker(request, ex_broker_of):
    """A broker on a free loopback port: Debian's mosquitto, then midge."""
    return ex_broker_of(request.param)


@pytest.fixture
def programs(tmp_path):
    """programs(argv, stdin=None, cwd=None) -> Client; killed (SIGTERM) at teardown, and
    their output checked for sanitizer reports."""
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
