"""A pytest plugin: once the session is over and reported, the process ends with
pytest's own status, skipping the interpreter's shutdown.

At shutdown the daemon threads (heartbeats, channel-layer publishers, the Redis
and Celery clients of in-process workers) stop wherever they are, some holding a
redis-py connection pool's lock; a client's __del__ that needs that lock then
waits for good. The whole suite had passed and the process never ended: CI
killed it at its time limit (tests/test_suite_exit.py shows the mechanism).
"""

import os
import sys

import pytest

_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    status = config.stash.get(_EXIT_STATUS, None)
    if status is None:  # no session ran (--help, --version)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
