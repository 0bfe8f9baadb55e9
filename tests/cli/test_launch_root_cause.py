"""Which worker a failed multi-process job blames: the cause, not the survivors' reactions."""

import signal
from types import SimpleNamespace

from trainwell.cli.launch import describe_failure


def _killed(sig: int, timestamp: int) -> SimpleNamespace:
    return SimpleNamespace(exitcode=-sig, timestamp=timestamp, message="", error_file_data=None,
                           signal_name=lambda: signal.Signals(sig).name)


def test_a_killed_worker_is_blamed_over_a_peer_that_aborted_first():
    failures = {0: _killed(signal.SIGABRT, 1), 1: _killed(signal.SIGKILL, 2)}
    code, msg = describe_failure(failures, None, 2, "")
    assert "worker rank 1 was killed by signal SIGKILL" in msg


def test_an_abort_is_blamed_over_the_launcher_stopping_the_others():
    failures = {0: _killed(signal.SIGTERM, 1), 1: _killed(signal.SIGABRT, 2)}
    code, msg = describe_failure(failures, None, 2, "")
    assert "worker rank 1 was killed by signal SIGABRT" in msg
