"""The worker benchmark: the example job queue, pooled under a budget, against Django's plain backend.

Both run ``run_pooled_worker jobs.handlers.process_one`` with the same threads on the
same jobs; mysqlpool's workers share a budget of K connections, Django's plain
backend keeps a persistent connection per thread. Reported per configuration:
jobs/s and the peak number of connections the server listed (sampled server-side),
as medians over rounds that alternate the order of the two.

    python bench/job_queue.py [--jobs N] [--threads T] [--budget K] [--rounds R] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "jobqueue"))
sys.path.insert(0, str(ROOT))
from demo import Run, environment, run_queue  # noqa: E402

from tests.dbserver import test_server  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--budget", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return parser.parse_args(argv)


# What mysqlpool's figures are divided by, round by round.
REFERENCE = "plain backend, a connection per thread"


def rate(run: Run) -> float:
    return run.done / run.seconds


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    configs = {
        f"mysqlpool, budget {args.budget}": (
            ["--threads", str(args.threads), "--budget", str(args.budget)],
            {},
        ),
        REFERENCE: (
            ["--threads", str(args.threads)],
            {"DEMO_PLAIN_BACKEND": "1"},
        ),
    }
    runs: dict[str, list[Run]] = {name: [] for name in configs}
    with test_server() as server:
        for round_number in range(args.rounds):
            order = list(configs) if round_number % 2 == 0 else list(reversed(configs))
            for name in order:
                worker_args, extra = configs[name]
                run = run_queue(server, args.jobs, worker_args, environment(server, **extra), show=False)
                if not run.ok:
                    print(f"{name}: the run FAILED\n{run.log[-2000:]}", file=sys.stderr)
                    return 1
                runs[name].append(run)
                print(
                    f"round {round_number + 1}: {name}: {run.done / run.seconds:.0f} jobs/s, peak {run.peak}"
                )
    rows = [
        {
            "config": name,
            "jobs_per_second": statistics.median(map(rate, config_runs)),
            # The median of the rounds' ratios: each round ran both, one after the other.
            "ratio": statistics.median(
                rate(run) / rate(reference)
                for run, reference in zip(config_runs, runs[REFERENCE], strict=True)
            ),
            "peak_connections": max(run.peak for run in config_runs),
        }
        for name, config_runs in runs.items()
    ]
    print(
        f"\nJob queue, {datetime.date.today()}: {args.jobs} jobs, {args.threads} threads, medians of "
        f"{args.rounds} rounds; ratio = jobs/s / {REFERENCE}'s in the same round"
    )
    print(f"{'configuration':<40} {'jobs/s':>8} {'ratio':>6} {'peak server connections':>24}")
    for row in rows:
        print(
            f"{row['config']:<40} {row['jobs_per_second']:>8.0f} {row['ratio']:>5.2f}x "
            f"{row['peak_connections']:>24}"
        )
    if args.json:
        document = {
            "date": str(datetime.date.today()), "jobs": args.jobs, "threads": args.threads,
            "reference": REFERENCE, "rows": rows,
        }  # fmt: skip
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
