"""The fault table on the real stack: its own PostgreSQL cluster and
redis-server on spare loopback ports, `manage.py serve` with supervised
workers, visitors on websockets behaving as the widget does. For each fault,
every acked message is answered exactly once, /healthz says 503 while degraded
and 200 after. (bench/chaos.py prints the same table with counts.)"""

import os

import pytest

from bench.chaos import Stack, run_fault
from tests.faults.conftest import Serve


@pytest.fixture
def stack(postgres_cluster, redis_server, demo_model_dir, tmp_path):
    tmp_path.chmod(0o755)
    stack = Stack(tmp_path, demo_model_dir, postgres_cluster, redis_server, Serve)
    stack.wait_healthy(within=120)
    yield stack
    stack.stop()


@pytest.mark.timeout(900)
# 4.5 to 8.5 minutes on a 2-core machine, and its recovery-time bounds were missed twice in
# five runs under heavy load: run on purpose (RUN_FAULT_SUITE=1, or bench/chaos.py), not in
# every CI run, until it is trimmed. The fault tests in tests/faults/test_*.py run always.
@pytest.mark.skipif(not os.environ.get("RUN_FAULT_SUITE"), reason="the whole fault table: set RUN_FAULT_SUITE=1")
def test_every_acked_message_is_answered_once_through_worker_postgres_redis_and_server_faults(stack):
    rows = [run_fault(stack, fault, visitors=3, interval=0.5) for fault in
            ("worker_kill", "postgres_restart", "redis_restart_empty", "server_kill")]  # fmt: skip
    for row in rows:
        assert row["acked"] > 0, row
        assert row["lost"] == 0 and row["duplicated"] == 0 and row["unacked"] == 0, row
        assert row["healthz_200_after"], row
        # "Back" is when /healthz sees a worker per queue again; a worker's heartbeat
        # starts before it has loaded the model (20-30 s on a loaded 2-core box), so
        # the answers come up to that much later (bench/chaos.py prints both times).
        assert row["answered_after_back_s"] <= 60, row
    assert rows[0]["healthz_503_while_degraded"], rows[0]  # no live inference worker for a few seconds
