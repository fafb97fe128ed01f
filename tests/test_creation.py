"""The test database's creation and destruction: the pool is disposed around both."""

from __future__ import annotations

from typing import Any

import pytest

from mysqlpool import get_stats
from tests.helpers import Server, connection_id

pytestmark = pytest.mark.django_db(transaction=True)


def test_test_database_creation_and_destruction_dispose_the_pool(make_wrapper: Any, server: Server) -> None:
    """DROP DATABASE is never kept waiting by pooled connections."""
    wrapper = make_wrapper()
    settings = wrapper.settings_dict
    settings["TEST"] = {**settings["TEST"], "NAME": "mysqlpool_scratch"}
    name = wrapper.creation._get_test_db_name()
    wrapper.creation._create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    assert wrapper.alias not in get_stats()
    settings["NAME"] = name
    session = connection_id(wrapper)
    with wrapper.cursor() as cursor:  # an open transaction on the scratch database...
        cursor.execute("CREATE TABLE t (id INT) ENGINE=InnoDB")
        cursor.execute("START TRANSACTION")
        cursor.execute("INSERT INTO t VALUES (1)")
    wrapper.close()  # ...rolled back at check-in; the connection idles in the pool
    assert session in server.all_sessions()
    wrapper.creation._destroy_test_db(name, verbosity=0)
    assert wrapper.alias not in get_stats()
    server.wait_until_gone(session)
    assert (name,) not in server.query("SHOW DATABASES")
