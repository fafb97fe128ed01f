"""The exceptions and warnings mysqlpool raises.

Errors subclass Django's own database errors, so code that already catches
``django.db.OperationalError`` keeps working, and code that wants to tell a pool
problem from a server problem can catch the specific class.
"""

from __future__ import annotations

from django.db.utils import OperationalError


class PoolTimeout(OperationalError):
    """No pooled connection became free within the pool's ``timeout``."""


class ObsoleteSettingWarning(UserWarning):
    """A django-mysqlpool setting that no longer does anything, and is ignored."""


class ConnectionBudgetExceeded(OperationalError):
    """The process's connection budget stayed full for the pool's timeout."""
