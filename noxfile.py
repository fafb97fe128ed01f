"""The support matrix: Python 3.10-3.13 with Django 5.2 LTS, and Django 6.0 and 6.1 on 3.12+.

``make matrix`` runs it (it makes pyenv's interpreters visible to nox). Each session
runs the project's tests and Django's own test suite under the pooled ENGINE; the
``minimums`` session does so with the oldest releases the project supports.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"

DJANGO = {"5.2": "Django>=5.2,<5.3", "6.0": "Django>=6.0,<6.1", "6.1": "Django>=6.1,<6.2"}
MATRIX = [(python, "5.2") for python in ("3.10", "3.11", "3.12", "3.13")] + [
    (python, django) for python in ("3.12", "3.13") for django in ("6.0", "6.1")
]
MINIMUMS = ["Django>=5.2,<5.3", "SQLAlchemy>=2.0,<2.1", "mysqlclient>=2.2,<2.3", "python-daemon>=3.1,<3.2"]


def run_suites(session: nox.Session) -> None:
    session.run("python", "-m", "pytest", *session.posargs)
    session.run("python", "tests/django_suite.py")
    session.run("python", "tests/django_suite.py", "--reset-session")
    session.run("python", "tests/django_suite.py", "--alone")


@nox.session
@nox.parametrize(("python", "django"), MATRIX)
def tests(session: nox.Session, django: str) -> None:
    session.install("-e", ".[test]", DJANGO[django])
    run_suites(session)


@nox.session(python="3.10")
def minimums(session: nox.Session) -> None:
    session.install("-e", ".[test]", *MINIMUMS)
    run_suites(session)
