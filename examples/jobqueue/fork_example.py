"""mysqlpool.fork(): a parent and its children, each with connections of its own.

Run from examples/jobqueue with the DEMO_DB_* variables set (``make demo`` shows
which), after ``python manage.py migrate``::

    python fork_example.py
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobqueue.settings")
django.setup()

from django.db import connection  # noqa: E402

from mysqlpool import auto_close_db, fork  # noqa: E402


def connection_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        return int(cursor.fetchone()[0])


def main() -> None:
    print(f"parent {os.getpid()} uses connection {connection_id()}")
    children = []
    for _ in range(3):
        pid = fork()  # closes the idle pooled connections first; safe with threads too
        if pid == 0:
            with auto_close_db():
                print(f"  child {os.getpid()} uses connection {connection_id()}")
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    print(f"parent {os.getpid()} still works, now with connection {connection_id()}")


if __name__ == "__main__":
    main()
