"""Start the MariaDB server of the test run before Django reads its settings."""

from __future__ import annotations

import contextlib
import os

import pytest

from tests.dbserver import configured_server, throwaway_server

_server_stack = contextlib.ExitStack()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if configured_server() is None:
        server = _server_stack.enter_context(throwaway_server())
        os.environ.update(server.environ())


def pytest_unconfigure(config: pytest.Config) -> None:
    _server_stack.close()
