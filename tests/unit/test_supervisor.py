"""The worker supervisor's restart decisions (pure: no process, no sleeping) and its plumbing."""

from __future__ import annotations

import signal
import sys

from wadispatch.supervisor import RestartPolicy, describe_exit, exit_code_of, supervise


def crash(policy: RestartPolicy, at: float, ran: float = 0.5, code: int = 1):
    return policy.decide(code, started_at=at - ran, ended_at=at, stopping=False)


def test_an_abnormal_exit_is_restarted_with_doubling_backoff_up_to_the_cap() -> None:
    policy = RestartPolicy(max_restarts=100, window_seconds=60, backoff_initial=1, backoff_max=8)
    delays = []
    now = 0.0
    for _ in range(6):
        decision = crash(policy, now)
        assert decision.restart
        delays.append(decision.delay)
        now += decision.delay + 0.5
    assert delays == [1, 2, 4, 8, 8, 8]


def test_a_child_that_stayed_up_long_enough_resets_the_backoff() -> None:
    policy = RestartPolicy(backoff_initial=1, healthy_after=30)
    assert [crash(policy, at).delay for at in (10, 20, 30)] == [1, 2, 4]
    assert crash(policy, 100, ran=40).delay == 1


def test_too_many_restarts_within_the_window_gives_up_and_old_ones_are_forgotten() -> None:
    policy = RestartPolicy(max_restarts=3, window_seconds=60, backoff_initial=1, backoff_max=1)
    assert all(crash(policy, at).restart for at in (0, 5, 10))
    decision = crash(policy, 15)
    assert not decision.restart and "giving up" in decision.reason
    # Once the first restarts are more than a window old, the worker may be restarted again.
    later = RestartPolicy(max_restarts=3, window_seconds=60, backoff_initial=1, backoff_max=1)
    assert all(crash(later, at).restart for at in (0, 5, 10))
    assert crash(later, 63).restart


def test_no_restart_after_a_stop_was_asked_for_or_a_clean_exit() -> None:
    policy = RestartPolicy()
    stopped = policy.decide(-signal.SIGTERM, started_at=0, ended_at=5, stopping=True)
    assert not stopped.restart and "stop was asked for" in stopped.reason
    clean = policy.decide(0, started_at=0, ended_at=5, stopping=False)
    assert not clean.restart
    killed = policy.decide(-signal.SIGKILL, started_at=0, ended_at=5, stopping=False)
    assert killed.restart and "SIGKILL" in killed.reason


def test_max_restarts_zero_never_restarts() -> None:
    assert not crash(RestartPolicy(max_restarts=0), 1).restart


def test_exit_descriptions_and_codes() -> None:
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert (exit_code_of(3), exit_code_of(-signal.SIGKILL)) == (3, 137)


def test_supervise_restarts_a_failing_child_then_returns_its_code(tmp_path) -> None:
    # A child that fails twice, then exits cleanly: two restarts (no backoff), then code 0.
    counter = tmp_path / "runs"
    script = (
        "import pathlib, sys; p = pathlib.Path(sys.argv[1]); "
        "n = int(p.read_text()) + 1 if p.exists() else 1; p.write_text(str(n)); sys.exit(0 if n >= 3 else 7)"
    )
    policy = RestartPolicy(backoff_initial=0, backoff_max=0)
    assert supervise([sys.executable, "-c", script, str(counter)], policy) == 0
    assert counter.read_text() == "3"


def test_supervise_gives_up_with_the_childs_code() -> None:
    policy = RestartPolicy(max_restarts=1, backoff_initial=0, backoff_max=0)
    assert supervise([sys.executable, "-c", "raise SystemExit(5)"], policy) == 5
