"""A module of units that cannot be imported: it imports a package that is not installed."""

import mysqlpool_tests_no_such_package  # type: ignore[import-not-found]  # noqa: F401


def unit() -> bool:
    return True
