"""The common checkout and check-in in C (mysqlpool/_hot_path.c), and what it passes on.

The hot path must take every checkout and check-in of a plain request cycle (else
its speed is lost without a sign), count them as the Python methods do, and pass
every other case to them: a connection SQLAlchemy would replace, a transaction
left open, a pool disposed meanwhile. The Python methods are tested on their own
too, where the ``hot_path`` fixture runs a module's tests both ways.
"""

from __future__ import annotations

import time
from typing import Any

from mysqlpool import pooling, set_budget
from mysqlpool.budget import process_budget
from tests.helpers import connection_id, pool_stats, request_cycle


def hot_path_of(wrapper: Any) -> Any:
    hot_path = wrapper.pool.hot_path
    assert hot_path is not None, "the pool runs its checkouts in Python"
    return hot_path


def test_the_extension_was_built() -> None:
    assert pooling.HotPath is not None, "mysqlpool._hot_path was not built (a C compiler at install?)"


def test_request_cycles_run_in_c_and_are_counted_as_in_python(make_wrapper: Any) -> None:
    wrapper = make_wrapper()
    request_cycle(wrapper)  # opens the connection, in Python
    hot_path = hot_path_of(wrapper)
    handed_over = hot_path.handed_over
    for _ in range(50):
        request_cycle(wrapper)
    assert hot_path.handed_over == handed_over
    stats = pool_stats(wrapper)
    assert (stats["checkouts"], stats["connects"], stats["checked_out"], stats["idle"]) == (51, 1, 0, 1)
    assert stats["use_times"]["count"] == 51


def _replaced_at_next_checkout(wrapper: Any, make_stale: Any) -> bool:
    """Whether the next checkout, after ``make_stale(record)``, opens a new connection."""
    first = connection_id(wrapper)
    record = wrapper._lease.record
    wrapper.close()
    time.sleep(0.01)  # SQLAlchemy compares time.time() readings, which must differ
    make_stale(record)
    handed_over = hot_path_of(wrapper).handed_over
    second = connection_id(wrapper)
    assert hot_path_of(wrapper).handed_over == handed_over + 1
    return second != first


def test_a_connection_of_an_invalidated_pool_is_replaced(make_wrapper: Any) -> None:
    wrapper = make_wrapper()
    queue_pool = wrapper.pool._pool

    def invalidate_pool(record: Any) -> None:
        queue_pool._invalidate_time = time.time()  # as Pool._invalidate() marks it

    assert _replaced_at_next_checkout(wrapper, invalidate_pool)


def test_a_softly_invalidated_connection_is_replaced(make_wrapper: Any) -> None:
    wrapper = make_wrapper()
    assert _replaced_at_next_checkout(wrapper, lambda record: record.invalidate(soft=True))


def test_a_connection_due_for_recycling_is_replaced(make_wrapper: Any) -> None:
    wrapper = make_wrapper(pool={"recycle": 3600})

    def age(record: Any) -> None:
        record.starttime -= 3601

    assert _replaced_at_next_checkout(wrapper, age)


def test_an_open_transaction_is_passed_on_and_rolled_back(make_wrapper: Any) -> None:
    wrapper = make_wrapper()
    request_cycle(wrapper)
    wrapper.ensure_connection()
    wrapper.connection.query("BEGIN")
    handed_over = hot_path_of(wrapper).handed_over
    wrapper.close()
    assert hot_path_of(wrapper).handed_over == handed_over + 1
    assert request_cycle(wrapper, "SELECT @@in_transaction") == ((0,),)
    assert pool_stats(wrapper)["connects"] == 1


def test_a_connection_returned_after_dispose_is_closed(make_wrapper: Any) -> None:
    wrapper = make_wrapper()
    request_cycle(wrapper)
    wrapper.ensure_connection()
    hot_path = hot_path_of(wrapper)
    connection = wrapper.connection
    wrapper.close_pool()
    handed_over = hot_path.handed_over
    wrapper.close()
    assert hot_path.handed_over == handed_over + 1
    assert not connection.open


def test_without_the_extension_the_python_methods_do_it_all(make_wrapper: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(pooling, "HotPath", None)  # as where no C compiler built it
    wrapper = make_wrapper()
    for _ in range(3):
        request_cycle(wrapper)
    assert wrapper.pool.hot_path is None
    assert "checkout" not in vars(wrapper.pool) and "checkin" not in vars(wrapper.pool)
    assert (pool_stats(wrapper)["checkouts"], pool_stats(wrapper)["connects"]) == (3, 1)


def test_the_c_checkout_reads_the_clocks_python_reads(make_wrapper: Any) -> None:
    """The lease's start is time.monotonic()'s, and recycling compares time.time() readings.

    The C checkout reads both clocks with clock_gettime() on Linux: a clock mixed up
    there would make use times and recycling wrong without a failed request.
    """
    wrapper = make_wrapper(pool={"recycle": 3600})
    request_cycle(wrapper)  # opens the connection, in Python
    handed_over = hot_path_of(wrapper).handed_over
    before = time.monotonic()
    first = connection_id(wrapper)
    after = time.monotonic()
    assert hot_path_of(wrapper).handed_over == handed_over, "the checkout did not run in C"
    assert before <= wrapper._lease.since <= after
    record = wrapper._lease.record
    wrapper.close()
    # Started an hour and a second ago by time.time(): due for recycling.
    record.starttime = time.time() - 3601
    assert connection_id(wrapper) != first
    wrapper.close()


def test_a_record_class_changed_at_run_time_is_read_as_python_reads_it(
    make_wrapper: Any, monkeypatch: Any
) -> None:
    """The C checkout reads the record's slots where it found them, until the class changes.

    A plugin or a test may replace a field of SQLAlchemy's record class by a
    property: the checkout must then see what the property says, as Python would,
    not the slot the property hides.
    """
    wrapper = make_wrapper(pool={"recycle": 3600})
    request_cycle(wrapper)  # opens the connection, in Python
    first = connection_id(wrapper)  # in C: the slots are found
    record = wrapper._lease.record
    wrapper.close()
    assert connection_id(wrapper) == first  # the slots read again, unchanged
    wrapper.close()
    # An hour and a second earlier than the slot says, says the class now: due for
    # recycling (and so is every connection opened while the patch lasts).
    slot = vars(type(record))["starttime"]
    aged = property(lambda record: slot.__get__(record) - 3601, slot.__set__)
    monkeypatch.setattr(type(record), "starttime", aged)
    handed_over = hot_path_of(wrapper).handed_over
    assert connection_id(wrapper) != first
    assert hot_path_of(wrapper).handed_over == handed_over + 1  # the C checkout passed it on
    wrapper.close()


def test_the_c_checkout_records_holders_from_when_a_budget_is_set(make_wrapper: Any) -> None:
    """The hot path keeps its own copy of whether the budget tracks holders (Budget.follow)."""
    wrapper = make_wrapper()
    request_cycle(wrapper)  # the pool and its hot path exist before the budget
    holders_now = process_budget().holders.all
    try:
        set_budget(10)
        handed_over = hot_path_of(wrapper).handed_over
        wrapper.ensure_connection()
        assert hot_path_of(wrapper).handed_over == handed_over, "the checkout did not run in C"
        assert len(holders_now()) == 1
        wrapper.close()
        assert holders_now() == []
    finally:
        set_budget(None)
    wrapper.ensure_connection()
    assert holders_now() == []  # no budget: nothing recorded
    wrapper.close()
