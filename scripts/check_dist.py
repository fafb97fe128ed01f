"""Check what ``make dist`` built, as a user would meet it: ``check_dist.py DIST_DIR``.

1. The sdist ships what a build needs and the changelog, and no tests (they need
   this repository's Makefile, scripts and a MariaDB server: run them from a clone).
2. The wheel installs into a fresh virtual environment, with its C extension built.
3. There, a new Django project on the pooled ENGINE passes ``manage.py check``
   (which validates the pool settings without connecting) and refuses a bad one
   with mysqlpool's message, and ``mysqlpool_status`` shows the pool's settings.

Nothing here imports mysqlpool from the repository: the fresh environment's
Python runs in a scratch directory.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import venv
from pathlib import Path

SDIST_REQUIRED = (
    "pyproject.toml",
    "setup.py",
    "README.rst",
    "CHANGELOG.rst",
    "LICENSE",
    "mysqlpool/_probes.c",
    "mysqlpool/_hot_path.c",
    "mysqlpool/_holders.c",
)

SETTINGS = """
SECRET_KEY = "check-dist"
INSTALLED_APPS = ["mysqlpool"]
DATABASES = {{
    "default": {{
        "ENGINE": "mysqlpool.backends.mysqlpool",
        "NAME": "app",
        "HOST": "127.0.0.1",
        "USER": "app",
        "OPTIONS": {{"pool": {pool}}},
    }}
}}
"""


def main(dist: Path) -> None:
    (sdist,) = dist.glob("mysqlpool-*.tar.gz")
    (wheel,) = dist.glob("mysqlpool-*.whl")
    check_sdist(sdist)
    with tempfile.TemporaryDirectory(prefix="mysqlpool-dist-") as scratch:
        python = install(wheel, Path(scratch))
        check_project(python, Path(scratch))
    print(f"check_dist: {sdist.name} and {wheel.name} are fine")


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/")[0]
        names = {name.removeprefix(f"{root}/") for name in archive.getnames()}
    missing = [name for name in SDIST_REQUIRED if name not in names]
    tests = sorted(name for name in names if name.startswith("tests/"))
    assert not missing, f"the sdist lacks {missing}"
    assert not tests, f"the sdist ships tests that cannot run without the repository: {tests}"


def install(wheel: Path, scratch: Path) -> Path:
    """A fresh virtual environment with the wheel installed; its Python."""
    venv.create(scratch / "venv", with_pip=True)
    python = scratch / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", str(wheel.resolve()))
    # The C extensions, not their Python fallbacks.
    run(python, "-c", "import mysqlpool._probes, mysqlpool._hot_path, mysqlpool._holders")
    return python


def check_project(python: Path, scratch: Path) -> None:
    project = scratch / "project"
    project.mkdir()
    (project / "good_settings.py").write_text(SETTINGS.format(pool='{"pool_size": 4}'))
    (project / "bad_settings.py").write_text(SETTINGS.format(pool='{"pool_size": "4"}'))
    run(python, "-m", "django", "check", "--settings", "good_settings", cwd=project)
    status = run(python, "-m", "django", "mysqlpool_status", "--settings", "good_settings", cwd=project)
    assert "default: QueuePool to app@127.0.0.1:3306/app" in status.stdout, status.stdout
    refused = run(python, "-m", "django", "check", "--settings", "bad_settings", cwd=project, succeeds=False)
    assert "mysqlpool.E001" in refused.stderr, refused.stderr


def run(
    python: Path, *args: str, cwd: Path | None = None, succeeds: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the fresh environment's Python, which sees only the wheel (and ``cwd``, for settings)."""
    env = {"PATH": "/usr/bin:/bin", **({"PYTHONPATH": str(cwd)} if cwd is not None else {})}
    done = subprocess.run([python, *args], cwd=cwd, capture_output=True, text=True, env=env)
    if (done.returncode == 0) != succeeds:
        sys.exit(f"check_dist: {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


if __name__ == "__main__":
    main(Path(sys.argv[1]))
