"""``/healthz``: whether a daemon works, for a liveness probe or an operator.

Unhealthy (HTTP 503, with the reason) when no worker runs, when workers keep
failing, or when every worker thread has been stuck in a unit longer than
``--unit-timeout``; healthy (200) otherwise, an idle queue included.
"""

from __future__ import annotations

from collections.abc import Iterable

from mysqlpool.daemon.metrics_server import Page


def verdict(
    live_workers: int, keep_failing: bool, stalled: Iterable[float], unit_timeout: float | None
) -> str | None:
    """Why the daemon is unhealthy, or None. ``stalled``: each worker process's seconds
    with every thread in a unit and none starting or finishing one."""
    # First: between the deaths of a crash loop no worker runs while the master
    # waits to respawn one, and that wait is no reason of its own.
    if keep_failing:
        return "workers keep failing soon after their start"
    if live_workers == 0:
        return "no worker is running"
    stalled = list(stalled)
    if unit_timeout is not None and stalled and min(stalled) > unit_timeout:
        return f"every worker thread has been in a unit longer than --unit-timeout {unit_timeout:g}s"
    return None


def page(reason: str | None) -> Page:
    if reason is None:
        return 200, "text/plain; charset=utf-8", b"ok\n"
    return 503, "text/plain; charset=utf-8", f"unhealthy: {reason}\n".encode()
