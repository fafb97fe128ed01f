"""A pool's counters: exact under concurrent updates, with checkouts counted without a lock."""

from __future__ import annotations

import threading

from mysqlpool import stats


def test_counters_start_at_zero_and_add_up() -> None:
    counters = stats.PoolStats()
    assert counters.get() == dict.fromkeys(stats.COUNTERS, 0)
    counters.add(stats.CONNECTS, 3)
    counters.add(stats.CLOSES)
    counters.add(stats.WAIT_TIME, 0.25)
    counters.checkouts.add()
    figures = counters.get()
    assert (figures[stats.CHECKOUTS], figures[stats.WAIT_TIME], counters.open_connections()) == (1, 0.25, 2)


def test_a_tally_stays_exact_however_often_it_is_read() -> None:
    tally = stats.Tally()
    for _ in range(5):
        tally.add()
    assert [tally.value(), tally.value()] == [5, 5]  # a read draws a number, not counted
    tally.add()
    assert tally.value() == 6


def test_threads_counting_at_once_lose_nothing() -> None:
    counters = stats.PoolStats()

    def count() -> None:
        for _ in range(10_000):
            counters.checkouts.add()
            counters.add(stats.CONNECTS)

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    figures = counters.get()
    assert (figures[stats.CHECKOUTS], figures[stats.CONNECTS]) == (80_000, 80_000)


def test_figures_read_as_a_person_would_write_them() -> None:
    figures = {"open": 2, stats.CHECKOUTS: 1404, stats.WAITS: 3, stats.WAIT_TIME: 0.4, stats.TIMEOUTS: 0}
    figures[stats.INVALIDATIONS] = 1
    assert (
        stats.pool_summary("default", figures)
        == "default: 2 open, 1404 checkouts, 3 waits (0.4 s), 1 invalidation"
    )
    budget = {"limit": 3, "open": 2, "peak": 3, "waits": 1, "wait_time": 0.012, "timeouts": 0}
    assert stats.budget_summary(budget) == "budget 2/3 open (peak 3), 1 wait (12 ms)"
    assert stats.budget_summary({**budget, "limit": None}) == "no budget"
