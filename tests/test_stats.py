"""A pool's counters: exact under concurrent updates, with checkouts counted without a lock."""

from __future__ import annotations

import threading

import pytest

from mysqlpool import stats


def test_counters_start_at_zero_and_add_up() -> None:
    counters = stats.PoolStats()
    figures = counters.get()
    assert {name: figures[name] for name in stats.COUNTERS} == dict.fromkeys(stats.COUNTERS, 0)
    assert [figures[name]["count"] for name in stats.DISTRIBUTIONS] == [0, 0, 0]
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


def test_durations_fall_in_cumulative_buckets() -> None:
    durations = stats.Durations()
    for seconds in (0.0005, 0.003, 0.003, 2.0, 60.0):
        durations.record(seconds)
    snapshot = durations.snapshot()
    assert (snapshot["count"], snapshot["sum"]) == (5, pytest.approx(62.0065))
    buckets = dict((bound, count) for bound, count in snapshot["buckets"])
    assert [buckets[bound] for bound in (0.001, 0.005, 1.0, 5.0, float("inf"))] == [1, 3, 3, 4, 5]
    durations.record(0.0005)
    assert durations.snapshot()["buckets"][0] == [0.001, 2]  # reads add up, never count twice


def test_a_duration_equal_to_a_bound_counts_in_that_bound_s_bucket() -> None:
    """As Prometheus reads a bucket: its count is of durations <= its upper bound."""
    durations = stats.Durations()
    for seconds in (0.001, 0.005, 0.005000001, 10.0):
        durations.record(seconds)
    buckets = dict((bound, count) for bound, count in durations.snapshot()["buckets"])
    assert [buckets[bound] for bound in (0.001, 0.005, 0.01, 10.0, float("inf"))] == [1, 2, 3, 4, 4]


def test_durations_recorded_and_folded_by_threads_at_once_lose_nothing() -> None:
    durations = stats.Durations()

    def record() -> None:
        for number in range(20_000):
            durations.record(0.002)
            if not number & 255:  # as checkouts fold, while others record
                durations.fold()

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    reads = [durations.snapshot()["count"] for _ in range(20)]  # reading meanwhile
    for thread in threads:
        thread.join()
    assert reads == sorted(reads)
    snapshot = durations.snapshot()
    assert (snapshot["count"], snapshot["buckets"][1]) == (160_000, [0.005, 160_000])
    assert snapshot["sum"] == pytest.approx(320.0)


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
