"""``manage.py mysqlpool_status [--json]``: each pooled alias's pool and the budget.

It shows what the settings resolve to (pool class, every argument with its
default, where connections go, never the password) and this process's live figures
and budget. A pool is created on first use, so a fresh ``manage.py`` process shows
figures only for aliases it has used; daemons log ``get_stats()`` for theirs.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from mysqlpool.budget import process_budget
from mysqlpool.config import accepted_arguments, pool_config, pooled_aliases
from mysqlpool.registry import get_stats

_SHOWN_TARGET = ("HOST", "PORT", "NAME", "USER")


class Command(BaseCommand):
    help = "Show each pooled alias's pool settings and live figures, and the connection budget."
    # Django 6.1's system checks connect to every database: they would show as this
    # process's use of the pool. `manage.py check` is there to run them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")

    def handle(self, *args: Any, **options: Any) -> None:
        status = collect_status()
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, sort_keys=True))
        else:
            self.stdout.write(render(status))


def collect_status() -> dict[str, Any]:
    stats = get_stats()
    aliases = {}
    for alias, settings_dict in pooled_aliases().items():
        config = pool_config(alias, connections[alias].settings_dict)
        arguments = {**accepted_arguments(config.backend), **config.arguments}
        aliases[alias] = {
            "target": {key.lower(): settings_dict.get(key) for key in _SHOWN_TARGET},
            "backend": config.backend_name,
            "arguments": arguments,
            "live": {k: v for k, v in stats.get(alias, {}).items() if k != "budget"} or None,
        }
    return {"aliases": aliases, "budget": process_budget().status()}


def render(status: dict[str, Any]) -> str:
    lines = []
    for alias, pool in status["aliases"].items():
        target = pool["target"]
        lines.append(
            f"{alias}: {pool['backend']} to {target['user']}@{target['host'] or 'localhost'}:"
            f"{target['port'] or 3306}/{target['name']}"
        )
        rows = [(name, value) for name, value in sorted(pool["arguments"].items())]
        if pool["live"] is None:
            rows.append(("live figures", "none yet: this process has not used the alias"))
        else:
            rows += sorted(pool["live"].items())
        lines += _table(rows)
    budget = status["budget"]
    lines.append(f"budget: {budget['limit'] if budget['limit'] is not None else 'none'}")
    lines += _table(sorted((k, v) for k, v in budget.items() if k != "limit"))
    return "\n".join(lines)


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    width = max((len(name) for name, _ in rows), default=0)
    return [f"  {name:<{width}}  {_shown(value)}" for name, value in rows]


def _shown(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
