"""Who holds each checked-out connection: the checkout site is the user's own code."""

from __future__ import annotations

import _thread
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mysqlpool import auto_close_db, holders, set_budget
from mysqlpool.budget import process_budget
from tests.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "other", "plain"])


@pytest.fixture(autouse=True)
def budget(hot_path: str) -> Iterator[None]:  # each test in C and in Python
    set_budget(10)  # checkouts are tracked under a budget
    yield
    set_budget(None)


def site_of_checkout(wrapper: Any, checkout: Callable[[], object]) -> str:
    """The function the holder of ``checkout``'s connection was recorded at."""
    checkout()
    try:
        (holder,) = process_budget().holders.all()
        assert holder.site is not None
        code, _ = holder.site
        return code.co_name
    finally:
        wrapper.close()


def test_each_checkout_is_attributed_to_its_own_site_whatever_came_before(make_wrapper: Any) -> None:
    """The depth of the last site is tried first: a checkout made another way must not inherit it."""
    wrapper = make_wrapper()

    def connects() -> None:
        wrapper.ensure_connection()

    def opens_a_cursor() -> None:  # through more of Django's frames than ensure_connection()
        wrapper.cursor().close()

    def helper() -> None:
        wrapper.ensure_connection()

    def calls_a_helper() -> None:  # the site is the helper, one frame deeper in the user's code
        helper()

    calls = [connects, connects, opens_a_cursor, connects, calls_a_helper, opens_a_cursor, calls_a_helper]
    sites = [site_of_checkout(wrapper, call) for call in calls]
    expected = [call.__name__ if call is not calls_a_helper else "helper" for call in calls]
    assert sites == expected


def test_the_checkout_site_shown_names_the_line_of_the_call(make_wrapper: Any) -> None:
    wrapper = make_wrapper()

    def connects() -> None:
        wrapper.ensure_connection()  # the line shown: the first of the body

    connects()
    try:
        (holder,) = process_budget().holders.all()
        line = connects.__code__.co_firstlineno + 1
        assert f"checked out at {__file__}:{line} in connects" in holder.describe(time.monotonic())
    finally:
        wrapper.close()


def test_code_typed_in_a_shell_is_the_checkout_site(make_wrapper: Any) -> None:
    """As ``manage.py shell`` runs it, through auto_close_db: not contextlib's wrapper."""
    typed = (
        "@auto_close_db\n"
        "def hog():\n"
        "    wrapper.ensure_connection()\n"
        "    return process_budget().holders.all()\n"
    )
    namespace: dict[str, Any] = {
        "auto_close_db": auto_close_db, "process_budget": process_budget, "wrapper": make_wrapper()
    }  # fmt: skip
    exec(compile(typed, "<console>", "exec"), namespace)
    try:
        (holder,) = namespace["hog"]()
    finally:
        namespace["wrapper"].close()
    assert holder.describe(time.monotonic()).endswith("checked out at <console>:3 in hog")


def test_a_hold_with_no_python_frame_above_is_recorded_at_an_unknown_site() -> None:
    """hold() run straight from C (here: a thread started on it) has no user frame to name."""
    recorded = holders.Holders()  # with the recorder the hot_path fixture chose
    _thread.start_new_thread(recorded.hold, (1, "alias"))
    wait_for(lambda: len(recorded), timeout=10, what="the hold recorded")
    (holder,) = recorded.all()
    assert holder.site is None
    assert "holds a connection of alias 'alias' for " in holder.describe(time.monotonic())
    assert holder.describe(time.monotonic()).endswith("checked out at unknown")
