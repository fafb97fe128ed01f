"""Draw the results of ``make bench`` into one PNG: request cycle ratios, job queue, web requests.

python bench/chart.py REQUEST_CYCLE.json JOB_QUEUE.json WEB_REQUESTS.json OUT.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402

# The web benchmark's ratios to persistent, and their labels.
WEB_RATIOS = (
    ("throughput_ratio", "req/s"),
    ("p50_ratio", "p50"),
    ("p99_ratio", "p99"),
    ("connections_ratio", "server connections"),
)


def request_cycle_panel(ratios: Any, request_cycle: dict[str, Any]) -> None:
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
    ratios.set_xticks([i + 0.2 for i in range(len(configs))], configs)
    ratios.set_ylabel("time per request / persistent connection")
    ratios.set_title("Request cycle (lower is better)")
    ratios.legend()


def job_queue_panel(queue: Any, job_queue: dict[str, Any]) -> None:
    names = [row["config"] for row in job_queue["rows"]]
    queue.bar(names, [row["jobs_per_second"] for row in job_queue["rows"]], color="tab:green")
    queue.set_ylabel("jobs/s")
    queue.set_title(f"Job queue, {job_queue['threads']} threads")
    for index, row in enumerate(job_queue["rows"]):
        queue.annotate(
            f"peak {row['peak_connections']} connections",
            (index, row["jobs_per_second"]),
            ha="center",
            va="bottom",
        )
    queue.tick_params(axis="x", labelsize=8)


def web_panel(web: Any, web_requests: dict[str, Any]) -> None:
    rows = web_requests["rows"]
    width = 0.8 / len(WEB_RATIOS)
    for offset, (field, label) in enumerate(WEB_RATIOS):
        web.bar(
            [i + offset * width for i in range(len(rows))], [row[field] for row in rows], width, label=label
        )
    web.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], [row["config"] for row in rows])
    web.axhline(1.0, color="grey", linewidth=0.8)
    web.set_ylabel("ratio to persistent")
    web.set_title("gunicorn gthread 2x8 under wrk, 64 connections")
    web.legend(fontsize=8)


def main(argv: list[str]) -> int:
    request_cycle, job_queue, web_requests = (json.loads(Path(path).read_text()) for path in argv[:3])
    figure, (ratios, queue, web) = plt.subplots(1, 3, figsize=(18, 4.5))
    request_cycle_panel(ratios, request_cycle)
    job_queue_panel(queue, job_queue)
    web_panel(web, web_requests)
    figure.tight_layout()
    figure.savefig(argv[3], dpi=100)
    print(f"Chart written to {argv[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
