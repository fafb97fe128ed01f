from collections.abc import Callable
from types import FrameType
from typing import Any

class Recorder:
    on_hold: Callable[[], object] | None
    def __init__(
        self,
        *,
        holders: dict[int, tuple[Any, ...]],
        machinery_files: dict[str, bool],
        is_machinery: Callable[[str], bool],
        getframe: Callable[[int], FrameType],
        monotonic: Callable[[], float],
    ) -> None: ...
    def hold(self, key: int, alias: str, /) -> None: ...
    def release(self, key: int, /) -> None: ...
