"""Run Django's own tests of its database layer against mysqlpool's ENGINE.

mysqlpool changes how Django's MySQL backend opens, initializes, closes and
discards connections, so Django's own tests of backends, transactions, on-commit
hooks, basic models and SELECT ... FOR UPDATE are the best check that nothing
Django relies on has changed. They are taken from the sdist of the installed
Django (so they match its code), downloaded once into .cache/django-<version>/,
and run by Django's runtests.py with tests/django_suite_settings.py against
tests/dbserver.py's server. The exit code is runtests.py's.

These apps import nothing beyond the dependencies of Django and mysqlpool (the
sdist's tests/requirements/ lists what the whole suite needs: selenium, Pillow,
...), so nothing else is installed.

    python tests/django_suite.py                     # all the apps, pooled ENGINE
    python tests/django_suite.py --plain             # the same on Django's own ENGINE
    python tests/django_suite.py --reset-session     # with reset_on_return "session"
    python tests/django_suite.py --alone             # ALONE's classes, each in its own run
    python tests/django_suite.py backends.mysql      # some tests only

--plain tells a failure of mysqlpool from one of Django or the server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import django
from dbserver import test_server

ROOT = Path(__file__).resolve().parent.parent
APPS = ("backends", "transactions", "transaction_hooks", "basic", "select_for_update")
# Read by tests/django_suite_settings.py.
ENV_ENGINE = "MYSQLPOOL_SUITE_ENGINE"
ENV_RESET_SESSION = "MYSQLPOOL_SUITE_RESET_SESSION"
POOLED_ENGINE = "mysqlpool.backends.mysqlpool"
# Test classes whose outcome depends on what the pool holds when they start: run
# alone, the pool holds one idle connection from the test database's creation, an
# order the whole run never gives them.
ALONE = ("backends.base.test_base.ConnectionHealthChecksTests",)
PLAIN_ENGINE = "django.db.backends.mysql"


def django_tests_dir(version: str) -> Path:
    """The tests/ directory of Django ``version``'s sdist, downloaded on first use."""
    cache = ROOT / ".cache" / f"django-{version}"
    if cache.is_dir():
        return cache / "tests"
    cache.parent.mkdir(exist_ok=True)
    # Unpacked beside the cache and renamed into place: a run interrupted halfway
    # leaves no cache that looks complete.
    with tempfile.TemporaryDirectory(dir=cache.parent) as scratch:
        download = f"pip download --quiet --no-deps --no-binary :all: django=={version} --dest".split()
        subprocess.run([sys.executable, "-m", *download, scratch], check=True)
        (sdist,) = Path(scratch).glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            members = [m for m in archive.getmembers() if m.name.split("/")[1:2] == ["tests"]]
            archive.extractall(scratch, members=members, filter="data")
        (top,) = {m.name.split("/")[0] for m in members}
        Path(scratch, top).rename(cache)
    return cache / "tests"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plain", action="store_true", help=f"run on {PLAIN_ENGINE} instead")
    parser.add_argument(
        "--reset-session",
        action="store_true",
        help="reset each session at check-in (reset_on_return 'session')",
    )
    parser.add_argument("--alone", action="store_true", help=f"run each of {', '.join(ALONE)} alone")
    parser.add_argument("labels", nargs="*", default=APPS, help="test labels (default: %(default)s)")
    options = parser.parse_args()
    runs = [[label] for label in ALONE] if options.alone else [options.labels]
    codes = [run_suite(options, labels) for labels in runs]
    return next((code for code in codes if code), 0)


def run_suite(options: argparse.Namespace, labels: list[str]) -> int:
    """Django's tests ``labels`` by runtests.py, on a throwaway server; its exit code."""
    engine = PLAIN_ENGINE if options.plain else POOLED_ENGINE
    tests_dir = django_tests_dir(django.__version__)
    runtests = "runtests.py --settings=tests.django_suite_settings --parallel=1 --noinput --verbosity=1"
    command = [sys.executable, *runtests.split(), *labels]
    started = time.monotonic()
    with test_server() as server:
        environ = {
            **os.environ,
            **server.environ(),
            ENV_ENGINE: engine,
            ENV_RESET_SESSION: "1" if options.reset_session else "",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        code = subprocess.call(command, cwd=tests_dir, env=environ)
    outcome = "passed" if code == 0 else f"FAILED (exit code {code})"
    mode = " resetting sessions" if options.reset_session else ""
    print(
        f"Django {django.__version__}'s tests of {' '.join(labels)} on {engine}{mode}: "
        f"{outcome} in {time.monotonic() - started:.0f}s"
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
