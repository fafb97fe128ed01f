"""Draw the results of ``make bench`` into one PNG: request cycle ratios, time per request
projected over a network from its round trips, job queue, web requests (a panel per web server).

python bench/chart.py REQUEST_CYCLE.json JOB_QUEUE.json WEB_REQUESTS.json OUT.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

# The configurations of bench/request_cycle.py (and the web benchmark's of the same
# name), as a reader knows them.
LABELS = {
    "pooled": "mysqlpool",
    "pooled-reset": 'mysqlpool,\n"session" reset',
    "persistent": "persistent\nconnection",
    "persistent-again": "persistent\n(control)",
    "persistent-same-cursors": "persistent,\nmysqlpool's\ncursors",
    "default": "connect per\nrequest",
    "django-db-connection-pool": "django-db-\nconnection-pool",
}


def draw_projection(axes: Axes, rows: list[dict[str, Any]]) -> None:
    """One thread's ms per request by network round-trip time: loopback, then as projected."""
    for row in rows:
        rtts = [0.0, *map(float, row["projected_ms"])]
        times = [row["ms_per_request"], *row["projected_ms"].values()]
        axes.plot(rtts, times, marker="o", label=f"{row['config']} ({row['round_trips']:.1f} round trips)")
    axes.set_xlabel("network round-trip time (ms)")
    axes.set_ylabel("ms per request, 1 thread")
    axes.set_title("Over a network: loopback time + round trips x RTT")
    axes.legend(fontsize=8)


# The web benchmark's ratios to each server's reference, and their labels.
WEB_RATIOS = (
    ("throughput_ratio", "req/s"),
    ("p50_ratio", "p50"),
    ("p99_ratio", "p99"),
    ("connections_ratio", "server connections"),
)


def request_cycle_panel(ratios: Any, network: Any, request_cycle: dict[str, Any]) -> None:
    rows = [row for row in request_cycle["rows"] if row["ratio"] is not None]
    configs = sorted(
        {row["config"] for row in rows}, key=lambda name: [r["config"] for r in rows].index(name)
    )
    for offset, threads in enumerate(sorted({row["threads"] for row in rows})):
        values = [
            next(r["ratio"] for r in rows if r["config"] == c and r["threads"] == threads) for c in configs
        ]
        ratios.bar(
            [i + offset * 0.4 for i in range(len(configs))], values, width=0.4, label=f"{threads} thread(s)"
        )
    ratios.set_xticks([i + 0.2 for i in range(len(configs))], [LABELS.get(c, c) for c in configs], fontsize=8)
    ratios.set_ylabel("time per request / persistent connection")
    thread_counts_by_limit: dict[float, list[str]] = {}
    for threads, limit in request_cycle["max_ratio"].items():
        thread_counts_by_limit.setdefault(limit, []).append(threads)
    for limit, thread_counts in thread_counts_by_limit.items():
        ratios.axhline(limit, linestyle="--", linewidth=1, color="black")
        label = f"mysqlpool's target ({' and '.join(thread_counts)} threads): <= {limit}x"
        ratios.annotate(label, (-0.3, limit), va="bottom", fontsize=8)
    ratios.set_title(
        f"Request cycle, {request_cycle['date']}, {request_cycle['versions']}\n"
        f"{request_cycle.get('placement', 'CPUs shared')}; "
        "time per request relative to a persistent connection (lower is better)",
        fontsize=9,
    )
    ratios.legend()

    # The control would draw persistent's line twice.
    control = request_cycle.get("control")
    one_thread = [row for row in rows if row["threads"] == 1 and row["config"] != control]
    draw_projection(network, one_thread)


def job_queue_panel(queue: Any, job_queue: dict[str, Any]) -> None:
    """Jobs/s as ratios to the reference's in the same round, with each configuration's peak connections."""
    rows = job_queue["rows"]
    queue.bar([row["config"] for row in rows], [row["ratio"] for row in rows], color="tab:green")
    queue.set_ylabel(f"jobs/s relative to\n{job_queue['reference']}")
    queue.set_title(f"Job queue, {job_queue['threads']} threads, {job_queue['date']}")
    for index, row in enumerate(rows):
        label = f"{row['ratio']:.2f}x, peak {row['peak_connections']} connections"
        queue.annotate(label, (index, row["ratio"]), ha="center", va="bottom")
    queue.tick_params(axis="x", labelsize=8)


# The bar colours of WEB_RATIOS (matplotlib's default cycle), for their target lines.
_COLOURS = {field: f"C{index}" for index, (field, _) in enumerate(WEB_RATIOS)}


def web_panel(web: Any, server: str, web_requests: dict[str, Any]) -> None:
    """One server's ratios to its reference on that server, a group of bars per configuration,
    and mysqlpool's targets as lines of the colour of their bars."""
    rows = [row for row in web_requests["rows"] if row["server"] == server]
    reference = web_requests["references"][server]
    width = 0.8 / len(WEB_RATIOS)
    for offset, (field, label) in enumerate(WEB_RATIOS):
        web.bar(
            [i + offset * width for i in range(len(rows))], [row[field] for row in rows], width, label=label
        )
    labels = [web_label(row, reference, web_requests["controls"][server]) for row in rows]
    web.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], labels, fontsize=8)
    web.axhline(1.0, color="grey", linewidth=0.8)
    for field, limit in web_requests["targets"].items():
        web.axhline(limit, linestyle="--", linewidth=1, color=_COLOURS[field])
    labels_of = dict(WEB_RATIOS)
    targets = ", ".join(
        f"{labels_of[field]} {'>=' if field == 'throughput_ratio' else '<='} {limit}x"
        for field, limit in web_requests["targets"].items()
    )
    web.set_ylabel(f"ratio to {reference}")
    web.set_title(
        f"{web_requests['servers'][server]}, under wrk, {web_requests['wrk_connections']} connections, "
        f"{web_requests['date']}\n"
        f"mysqlpool's targets (dashed): {targets}",
        fontsize=10,
    )
    web.legend(fontsize=8)


def web_label(row: dict[str, Any], reference: str, control: str) -> str:
    """The configuration (the control as the reference's), its peak server connections
    and its errors, if any, on lines short enough for eight configurations side by side.

    Errors are shown because a configuration that failed requests (persistent under
    uvicorn reaches the server's max_connections) answered some of them too fast.
    """
    config = row["config"]
    if config == control:
        name = f"{reference}\n(control)"
    else:
        name = LABELS.get(config, config.replace(", ", ",\n"))
    errors = f", {row['errors']} errors" if row["errors"] else ""
    return f"{name}\n{row['peak_connections']} connections{errors}"


def layout(servers: list[str]) -> list[list[str]]:
    """Three panels on top; below, one panel per web server, sharing the width equally."""
    columns = 6  # divisible by the 3 panels on top and by 1 or 2 web servers
    top = [name for name in ("ratios", "network", "queue") for _ in range(columns // 3)]
    return [top, [server for server in servers for _ in range(columns // len(servers))]]


def main(argv: list[str]) -> int:
    request_cycle, job_queue, web_requests = (json.loads(Path(path).read_text()) for path in argv[:3])
    servers = list(web_requests["servers"])
    figure, panels = plt.subplot_mosaic(layout(servers), figsize=(20, 10))
    request_cycle_panel(panels["ratios"], panels["network"], request_cycle)
    job_queue_panel(panels["queue"], job_queue)
    for server in servers:
        web_panel(panels[server], server, web_requests)
    figure.tight_layout()
    figure.savefig(argv[3], dpi=100)
    print(f"Chart written to {argv[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
