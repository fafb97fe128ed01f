from collections import deque
from collections.abc import Callable
from typing import Any

class HotPath:
    handed_over: int
    tracking: bool
    def __init__(
        self,
        *,
        pool: Any,
        check_out: Callable[[Any], Any],
        lend: Callable[..., Any],
        check_in: Callable[..., None],
        count_checkout: Callable[[], int],
        fold: Callable[[], None],
        take_idle: Callable[[], Any],
        idle: deque[Any],
        line: deque[Any],
        serve_late_comers: Callable[[], None],
        budget: Any,
        hold: Callable[[int, str], None],
        release: Callable[[int], None],
        alias: str,
        queue_pool: Any,
        record_use: Callable[[float], None],
        initialized: str,
        wall_clock: Callable[[], float],
        monotonic: Callable[[], float],
        max_idle: int,
    ) -> None: ...
    def checkout(self, lease: Any, /) -> Any: ...
    def checkin(self, lease: Any, /, *, discard: bool = ...) -> None: ...
    def stop(self) -> None: ...

class LeaseFields:
    pool: Any
    record: Any
    connection: Any
    session: Any
    since: float
    previous: Any
