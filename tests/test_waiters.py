"""A waiter in line: served exactly once, by whoever serves first or by its own giving up."""

from __future__ import annotations

import threading

import pytest

from mysqlpool.stats import PoolStats
from mysqlpool.waiters import PERMIT, RECORD, WITHDRAWN, Waiter


class Pool:
    """What a waiter knows of its pool."""

    alias = "default"
    stats = PoolStats()


def test_the_first_outcome_wins_and_later_ones_are_refused() -> None:
    waiter = Waiter(Pool())
    assert waiter.serve(PERMIT)
    assert not waiter.serve(RECORD, object())  # type: ignore[arg-type]
    assert not waiter.withdraw()  # it must take what it was served
    assert (waiter.outcome, waiter.record) == (PERMIT, None)


def test_a_withdrawn_waiter_is_never_served() -> None:
    waiter = Waiter(Pool())
    assert waiter.withdraw()
    assert not waiter.serve(PERMIT)
    assert waiter.outcome == WITHDRAWN


def test_a_wait_ends_when_served_from_another_thread() -> None:
    waiter = Waiter(Pool())
    record = object()
    server = threading.Timer(0.01, waiter.serve, (RECORD, record))
    server.start()
    assert waiter.wait(30) == RECORD
    assert waiter.handed_record() is record
    server.join()


def test_a_wait_nobody_serves_ends_at_its_timeout_with_nothing() -> None:
    assert Waiter(Pool()).wait(0.01) is None


def test_a_waiter_served_with_room_has_no_record_to_hand() -> None:
    waiter = Waiter(Pool())
    waiter.serve(PERMIT)
    with pytest.raises(RuntimeError, match="served with 'permit' has no record"):
        waiter.handed_record()


def race_to_serve(waiter: Waiter, outcomes: tuple[str, ...]) -> list[str]:
    """Each outcome offered to ``waiter`` by a thread of its own, all at once; those accepted."""
    accepted: list[str] = []
    barrier = threading.Barrier(len(outcomes))

    def serve(outcome: str) -> None:
        barrier.wait()
        if waiter.serve(outcome):
            accepted.append(outcome)

    threads = [threading.Thread(target=serve, args=(outcome,)) for outcome in outcomes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted


def test_racing_servers_and_the_waiter_giving_up_agree_on_one_outcome() -> None:
    for _ in range(200):
        waiter = Waiter(Pool())
        accepted = race_to_serve(waiter, (PERMIT, WITHDRAWN, RECORD))
        assert len(accepted) == 1 and waiter.outcome == accepted[0]
