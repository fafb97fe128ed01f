"""``manage.py run_pooled_worker dotted.path.to.callable [options]``.

Runs any callable as the unit of work of a PooledDaemonCommand: truthy when it did
work, falsy when there was nothing to do. The path is checked before anything starts.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils.module_loading import import_string

from mysqlpool.daemon import PooledDaemonCommand


class Command(PooledDaemonCommand):
    help = "Run a callable as the unit of work of pooled worker threads, until SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("callable", help="Dotted path of the unit of work, e.g. myapp.jobs.process_one.")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        self.unit = resolve_callable(options["callable"])
        self.unit_path: str = options["callable"]
        super().handle(*args, **options)

    def describe_unit(self) -> str:
        return self.unit_path

    def handle_job(self) -> object:
        return self.unit()


def resolve_callable(path: str) -> Callable[[], object]:
    """The callable at ``path``, or a CommandError saying why it cannot be the unit of work."""
    found = _imported(path)
    if inspect.isclass(found):
        raise CommandError(
            f"{path!r} is a class: calling it makes an instance, not a unit of work. "
            "Name a module-level function (or a bound method assigned to a module-level name)."
        )
    if not callable(found):
        raise CommandError(f"{path!r} is not a callable: it is of type {type(found).__name__}.")
    _check_called_without_arguments(path, found)
    unit: Callable[[], object] = found
    return unit


def _imported(path: str) -> object:
    try:
        found = import_string(path)
    except ImportError as error:
        module = path.rpartition(".")[0]
        if module in sys.modules and _is_module(path):  # a submodule its package does not import
            raise _a_module(path) from None
        if module and module not in sys.modules and _is_module(module):
            # The module is there, but importing it failed: say so, or the user
            # looks for a typo in the path.
            raise CommandError(
                f"{path!r}: importing {module} failed with {type(error).__name__}: {error}"
            ) from error
        raise CommandError(f"{path!r} is not an importable dotted path to a callable: {error}") from None
    if inspect.ismodule(found):
        raise _a_module(path)
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package is missing, or fails to import
        return False


def _a_module(path: str) -> CommandError:
    return CommandError(
        f"{path!r} is a module, not a callable: name the function in it that does one unit "
        f"of work, e.g. '{path}.process_one'."
    )


def _check_called_without_arguments(path: str, unit: Callable[..., object]) -> None:
    try:
        # The signature of what is called: a decorator's wrapper may supply the
        # arguments of the function it wraps.
        signature = inspect.signature(unit, follow_wrapped=False)
    except (TypeError, ValueError):  # some callables of C have no signature to check
        return
    required = [
        name
        for name, parameter in signature.parameters.items()
        if parameter.default is parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    if required:
        raise CommandError(
            f"{path!r} needs the argument{'s' if len(required) > 1 else ''} {', '.join(required)}, "
            "and a unit of work is called without any: name a function that finds its own work "
            "(the next job, say)."
        )
