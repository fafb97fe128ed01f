"""The per-process connection budget: at most N server connections, all aliases together.

django-mysqlpool's reason to exist was to cap each process, so that one abusive
service hits its own limit instead of exhausting the server, and the culprit is easy
to find. The budget is enforced where connections are opened (the pools' creator),
so overflow and several aliases cannot exceed it. When it is full, an idle
connection of another alias is closed to make room; otherwise the opener waits in
line (first come, first served) up to its pool's timeout, then gets
ConnectionBudgetExceeded naming every holder. A connection counts until it is
closed, and a close gives its room to the first in line.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from typing import Any, Protocol

from mysqlpool.config import BUDGET_SETTING, HOLD_WARNING_SETTING, validated_hold_warning, validated_limit
from mysqlpool.errors import ConnectionBudgetExceeded
from mysqlpool.holders import Holders
from mysqlpool.throttled import ThrottledWarning
from mysqlpool.waiters import PERMIT, LinedUpPool, Waiter

logger = logging.getLogger("mysqlpool")


class FollowsTracking(Protocol):
    """What keeps a copy of ``Budget.tracking``: a pool's hot path in C."""

    tracking: bool


class Budget:
    """The connections this process may open, and who holds them."""

    def __init__(self) -> None:
        # Reentrant: Lease.__del__ releases a hold wherever the collector runs.
        self._lock = threading.RLock()
        self.limit: int | None = None
        # Whether checkouts are recorded in holders (it costs a walk up the stack):
        # a plain attribute, read on every checkout in Python. The pools' hot paths
        # in C keep their own copy (see follow()).
        self.tracking = False
        self._hot_paths: weakref.WeakSet[FollowsTracking] = weakref.WeakSet()
        self.holders = Holders()
        self.open = 0
        # The most connections counted at once: what the process held at its peak.
        self.peak = 0
        self.waits = 0
        self.wait_time = 0.0
        self.timeouts = 0
        self._timeout_warnings = ThrottledWarning(logger)
        # Threads waiting for room, first come first served; read without the lock
        # on every check-in (empty: nobody waits).
        self.line: deque[Waiter] = deque()

    def set_limit(self, limit: int | None) -> None:
        with self._lock:
            self.limit = validated_limit(limit, "the connection budget")
            self._update_tracking()
            self._serve_line()

    @property
    def hold_warning(self) -> float | None:
        return self.holders.hold_warning

    def set_hold_warning(self, seconds: float | None) -> None:
        with self._lock:
            self.holders.hold_warning = validated_hold_warning(seconds)
            self._update_tracking()

    def follow(self, hot_path: FollowsTracking) -> None:
        """Keep ``hot_path.tracking`` (a pool's checkout in C) equal to ``tracking``.

        Read from C, an attribute of this object costs a lookup in its type and its
        dict at every checkout and check-in, more than the rest of their bookkeeping
        (bench/README.rst); a field of the hot path's own costs nothing.
        """
        with self._lock:
            hot_path.tracking = self.tracking
            self._hot_paths.add(hot_path)

    def _update_tracking(self) -> None:
        self.tracking = self.limit is not None or self.holders.hold_warning is not None
        for hot_path in self._hot_paths:
            hot_path.tracking = self.tracking
        if not self.tracking:
            self.holders.forget_all()

    def _has_room(self) -> bool:
        return self.limit is None or self.open < self.limit

    def reserve(self) -> bool:
        """Count a connection about to be opened, if there is room."""
        with self._lock:
            if not self._has_room():
                return False
            self._count_one()
            return True

    def reserve_or_enlist(self, waiter: Waiter) -> bool:
        """Count a connection about to be opened, or else put ``waiter`` in line for room."""
        with self._lock:
            if self.reserve():
                return True
            self.line.append(waiter)
            self.waits += 1
        # DEBUG: under steady load most checkouts wait; get_stats() counts them.
        logger.debug(
            "Waiting for room in the connection budget (%s) for alias %r", self.limit, waiter.pool.alias
        )
        return False

    def released(self) -> None:
        """A connection counted by reserve() was closed, or never opened: room for the next."""
        with self._lock:
            self.open = max(self.open - 1, 0)
            self._serve_line()

    def _serve_line(self) -> None:
        while self.line and self._has_room():
            if self.line.popleft().serve(PERMIT):
                self._count_one()

    def _count_one(self) -> None:
        self.open += 1
        self.peak = max(self.peak, self.open)

    def leave_line(self, waiter: Waiter, waited: float) -> None:
        """``waiter`` no longer waits for room (served by its pool, or given up)."""
        with self._lock:
            if waiter in self.line:
                self.line.remove(waiter)
            self.wait_time += waited

    def first_waiting_pool(self) -> LinedUpPool | None:
        """The pool of the first thread in line, or None if nobody waits."""
        with self._lock:
            while self.line and self.line[0].served:
                self.line.popleft()
            return self.line[0].pool if self.line else None

    def exceeded(self, alias: str, timeout: float) -> ConnectionBudgetExceeded:
        """The error of an opener that waited ``timeout`` seconds in vain."""
        with self._lock:
            self.timeouts += 1
            message = self._exceeded_message(alias, timeout)
        self._timeout_warnings.warn(message)
        return ConnectionBudgetExceeded(message)

    def _exceeded_message(self, alias: str, timeout: float) -> str:
        # Idle connections are closed to make room before anyone waits: a full
        # budget with no holder recorded was taken before checkouts were tracked.
        lines = self.holders.describe_all() or [
            "(none recorded: the connections were checked out before the budget was set)"
        ]
        return (
            f"mysqlpool: the connection budget of this process ({self.limit} connections, "
            f"all aliases together) stayed full for {timeout}s while opening one for alias "
            f"{alias!r}. Holders:\n  " + "\n  ".join(lines) + "\nReturn connections sooner "
            "(auto_close_db() around each unit of work) or raise the budget."
        )

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "limit": self.limit,
                "open": self.open,
                "peak": self.peak,
                "held": len(self.holders),
                "waits": self.waits,
                "wait_time": self.wait_time,
                "timeouts": self.timeouts,
            }


_budget = Budget()
_configured = False


def process_budget() -> Budget:
    """This process's budget, read from settings on first use."""
    global _configured
    if not _configured:
        from django.conf import settings

        _budget.set_limit(validated_limit(getattr(settings, BUDGET_SETTING, None)))
        _budget.set_hold_warning(validated_hold_warning(getattr(settings, HOLD_WARNING_SETTING, None)))
        _configured = True
    return _budget


def set_budget(limit: int | None) -> None:
    """Set this process's connection budget at run time (None: no budget).

    The settings are read first, so that MYSQLPOOL_HOLD_WARNING still applies.
    """
    process_budget().set_limit(limit)


def start_afresh_in_child() -> None:
    """After fork(): the child's budget is its own, with nothing counted yet."""
    global _budget
    inherited = _budget
    _budget = Budget()
    _budget.set_limit(inherited.limit)
    _budget.set_hold_warning(inherited.hold_warning)
