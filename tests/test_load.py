"""The load run of bench/load.py, briefly: many threads, a small budget, nothing lost.

``make load`` runs it in full (200 threads, a budget of 8, 60 s). Here the pools'
timeout is short: a thread left waiting behind others that keep taking the
connections back fails the run with PoolTimeout or ConnectionBudgetExceeded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_many_threads_share_a_small_budget_with_nothing_lost(tmp_path: Path) -> None:
    figures_file = tmp_path / "load.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load.py"),
            *("--threads", "50", "--budget", "4", "--seconds", "8", "--timeout", "5"),
            *("--json", str(figures_file)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(figures_file.read_text())
    assert figures["errors"] == []
    assert figures["units"] > 50  # every thread did some work...
    assert figures["rows_in_table"] == figures["units"]  # ...and every unit's row is there
    assert 0 < figures["process_peak"] <= 4
    assert figures["server_peak"] <= 5  # a session the server was still ending, at most
    assert figures["left_open"] == 0
    assert "load run: passed" in run.stdout
