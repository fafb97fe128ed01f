"""``manage.py mysqlpool_status [--json]``: each pooled alias's pool and the budget.

It shows what the settings resolve to (pool class, every argument with its
default, where connections go, never the password) and this process's live figures
and budget. A pool is created on first use, so a fresh ``manage.py`` process shows
figures only for aliases it has used; daemons log ``get_stats()`` for theirs.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from mysqlpool.budget import process_budget
from mysqlpool.config import pool_config, pooled_aliases
from mysqlpool.registry import get_stats
from mysqlpool.stats import (
    DISTRIBUTIONS,
    INVALIDATION_CAUSES,
    WAIT_TIME,
    budget_summary,
    pool_summary,
    seconds_text,
)


class Command(BaseCommand):
    help = "Show each pooled alias's pool settings and live figures, and the connection budget."
    # Django 6.1's system checks connect to every database: they would show as this
    # process's use of the pool. `manage.py check` is there to run them.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        parser.add_argument(
            "--url",
            help="Show the figures of the process serving this endpoint (http://HOST:PORT, a daemon's "
            "--metrics-port or a web app's /metrics) instead of this process's.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["url"]:
            remote = read_remote(options["url"])
            self.stdout.write(
                json.dumps(remote, indent=2, sort_keys=True) if options["json"] else render_remote(remote)
            )
            return
        try:
            status = collect_status()
        except ImproperlyConfigured as error:  # a settings mistake: its message, not a traceback
            raise CommandError(f"{error} (manage.py check lists every mistake)") from None
        if options["json"]:
            self.stdout.write(json.dumps(status, indent=2, sort_keys=True))
        else:
            self.stdout.write(render(status))


def collect_status() -> dict[str, Any]:
    stats = get_stats()
    aliases = {}
    for alias, settings_dict in pooled_aliases().items():
        config = pool_config(alias, connections[alias].settings_dict)
        aliases[alias] = {
            "target": _target(settings_dict),
            "backend": config.backend_name,
            "arguments": config.shown_arguments(),
            "live": {k: v for k, v in stats.get(alias, {}).items() if k != "budget"} or None,
        }
    return {"aliases": aliases, "budget": process_budget().status()}


def _target(settings_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Where the alias's connections go, with MySQLdb's defaults filled in.

    As Django's backend and the client library read the settings: a HOST that is a
    path, no HOST or ``localhost`` mean a Unix socket: OPTIONS' ``unix_socket``
    (Django applies OPTIONS last), else the path, else the client library's
    default ("default"). A socket has no port.
    """
    host = settings_dict.get("HOST") or "localhost"
    options = settings_dict.get("OPTIONS")
    socket = None
    if host.startswith("/") or host == "localhost":
        option = options.get("unix_socket") if isinstance(options, Mapping) else None
        socket = option or (host if host.startswith("/") else "default")
    return {
        "host": "localhost" if socket is not None else host,
        "port": None if socket is not None else int(settings_dict.get("PORT") or 3306),
        "socket": socket,
        "name": settings_dict.get("NAME"),
        "user": settings_dict.get("USER"),
    }


def _where(target: Mapping[str, Any]) -> str:
    if target["socket"] is None:
        return "{user}@{host}:{port}/{name}".format(**target)
    socket = "the default socket" if target["socket"] == "default" else f"the socket {target['socket']}"
    return "{user}@localhost/{name} through ".format(**target) + socket


def render(status: dict[str, Any]) -> str:
    lines = []
    for alias, pool in status["aliases"].items():
        lines.append(f"{alias}: {pool['backend']} to {_where(pool['target'])}")
        rows = sorted(pool["arguments"].items())
        if pool["live"] is None:
            rows.append(("live figures", "none yet: this process has not used the alias"))
        else:
            rows.append(("live figures", pool_summary(alias, pool["live"])))
            rows += sorted(pool["live"].items())
        lines += _table(rows)
    budget = status["budget"]
    lines.append(f"budget: {budget['limit'] if budget['limit'] is not None else 'none'}")
    figures = sorted((name, value) for name, value in budget.items() if name != "limit")
    lines += _table([("summary", budget_summary(budget)), *figures])
    return "\n".join(lines)


def read_remote(url: str) -> dict[str, Any]:
    """Per process, the figures a metrics endpoint shows (see mysqlpool.metrics)."""
    try:
        from mysqlpool.metrics import figures_from_metrics
    except ImportError:
        raise CommandError("--url needs prometheus_client: pip install 'mysqlpool[metrics]'.") from None
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"--url {url!r}: give an http:// or https:// address, as http://HOST:PORT.")
    address = url if urllib.parse.urlsplit(url).path not in ("", "/") else url.rstrip("/") + "/metrics"
    try:
        with urllib.request.urlopen(address, timeout=10) as response:
            return figures_from_metrics(response.read().decode())
    except (OSError, ValueError) as error:
        raise CommandError(f"Cannot read {address}: {error}") from None


def render_remote(remote: dict[str, Any]) -> str:
    """As render(): per process, a summary and the live figures of each alias, then its budget."""
    lines = []
    for label, process in sorted(remote.items()):
        if label:
            lines.append(f"worker process {label}:")
        for alias, figures in sorted(process["pools"].items()):
            lines.append(f"{alias}: live figures")
            lines += _table([("summary", pool_summary(alias, figures)), *sorted(figures.items())])
        budget = process["budget"]
        lines.append(f"budget: {budget['limit'] if budget['limit'] is not None else 'none'}")
        figures = sorted((name, value) for name, value in budget.items() if name != "limit")
        lines += _table([("summary", budget_summary(budget)), *figures])
    return "\n".join(lines) or "no mysqlpool figures at that address"


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    width = max((len(name) for name, _ in rows), default=0)
    return [f"  {name:<{width}}  {_shown(name, value)}" for name, value in rows]


def _shown(name: str, value: Any) -> str:
    if name == WAIT_TIME:
        return seconds_text(value)
    if name == INVALIDATION_CAUSES:
        return ", ".join(f"{cause} {count:g}" for cause, count in value.items())
    if name in DISTRIBUTIONS:
        mean = value["sum"] / value["count"] if value["count"] else 0.0
        return f"{value['count']} (mean {seconds_text(mean)})"
    return f"{value:g}" if isinstance(value, float) else str(value)
