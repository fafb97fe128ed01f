"""Django's MySQL backend with the pooled backend's cursors: a benchmark's reference.

``request_cycle.py`` compares mysqlpool with Django's own backend, whose cursors
hand ``fetchone()`` and ``close()`` on through ``__getattr__`` at a cost that
mysqlpool's cursors do not pay (mysqlpool/backends/mysqlpool/cursors.py). A
persistent connection on this backend tells what the pool itself costs, the
cursors being the same.
"""

from mysqlpool.backends.mysqlpool.cursors import DirectCursorsDatabaseWrapper as DatabaseWrapper

__all__ = ["DatabaseWrapper"]
