"""The suite's process ends once pytest has reported, even when a daemon thread
holds a lock that a finalizer needs at the interpreter's shutdown (the way a
redis-py pool's lock hung CI after every test had passed)."""

import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO

# A daemon thread takes a lock for good; a clean-up at the interpreter's shutdown
# needs the same lock (as a redis-py client's __del__ needs its pool's lock).
STUCK_AT_SHUTDOWN = textwrap.dedent(
    """
    import atexit
    import threading

    lock = threading.Lock()
    threading.Thread(target=lock.acquire, daemon=True).start()
    atexit.register(lock.acquire)
    """
)


def _pytest(directory, test: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    (directory / "test_stuck.py").write_text(STUCK_AT_SHUTDOWN + test)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_stuck.py"],
        cwd=directory, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


PASSES = "\n\ndef test_passes():\n    assert lock.locked()\n"
FAILS = "\n\ndef test_fails():\n    assert not lock.locked()\n"


def test_without_the_plugin_the_process_hangs_at_shutdown(tmp_path):
    with pytest.raises(subprocess.TimeoutExpired):
        _pytest(tmp_path, PASSES, timeout=15)


def test_with_the_plugin_it_ends_with_pytests_own_status(tmp_path):
    passed = _pytest(tmp_path, PASSES, "-p", "tests.exit_plugin", timeout=60)
    assert passed.returncode == 0 and "1 passed" in passed.stdout
    failed = _pytest(tmp_path, FAILS, "-p", "tests.exit_plugin", timeout=60)
    assert failed.returncode == 1 and "1 failed" in failed.stdout
