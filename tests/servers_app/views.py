"""Views that tell which process and which server connection served them."""

from __future__ import annotations

import os
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse

from mysqlpool import get_stats
from tests.testapp.models import Item


def ping(request: HttpRequest) -> JsonResponse:
    """Up, without touching the database."""
    return JsonResponse({"pid": os.getpid()})


def three_queries() -> int:
    """What a small page asks the database; the id of the server connection that answered."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        (connection_id,) = cursor.fetchone()
        cursor.execute("SELECT 1")
        cursor.execute("SELECT 1")
    return int(connection_id)


def served_by() -> dict[str, Any]:
    """Three queries; who ran them, and how many connections were out."""
    return {"pid": os.getpid(), "connection": three_queries(), "checked_out": checked_out()}


def checked_out() -> int:
    return int(get_stats().get("default", {}).get("checked_out", 0))


def page(request: HttpRequest) -> JsonResponse:
    """The web benchmark's page (bench/web_requests.py): three queries, nothing else."""
    return JsonResponse({"connection": three_queries()})


def first_value(sql: str) -> int:
    """One query in a cursor of its own, as each call of the ORM makes; the first value it returned."""
    with connection.cursor() as cursor:
        cursor.execute(sql)
        (value,) = cursor.fetchone()
    return int(value)


async def async_page(request: HttpRequest) -> JsonResponse:
    """The web benchmark's async page, for uvicorn: the page's three queries, awaited one by one.

    Each ``sync_to_async`` call is one hop to the request's thread, as each ``await``
    of the ORM's async API (``acount()``, ``aget()``) is.
    """
    connection_id = await sync_to_async(first_value)("SELECT CONNECTION_ID()")
    await sync_to_async(first_value)("SELECT 1")
    await sync_to_async(first_value)("SELECT 1")
    return JsonResponse({"connection": connection_id})


def hit(request: HttpRequest) -> JsonResponse:
    return JsonResponse(served_by())


async def async_hit(request: HttpRequest) -> JsonResponse:
    """The ORM through Django's async API, then the same thread's connection."""
    items = await Item.objects.acount()
    return JsonResponse({**await sync_to_async(served_by)(), "items": items})


def stats(request: HttpRequest) -> JsonResponse:
    """The default alias's pool in this process, as get_stats() gives it."""
    return JsonResponse(get_stats().get("default", {}))
