"""Analytics reads on a read replica (SPEC §14), when DATABASE_REPLICA_URL adds the `replica` database.

Reads go to the replica only when three things hold: the code runs inside a web request (the middleware
below opened a request scope), inside `replica_reads()` (the analytics selectors enter it), and the
request has not written anything yet. Everything else reads the primary: background jobs and commands
(the leaderboards a worker warms right after a run must include that run), reads inside a transaction,
and every read after a write of the same request, so a request always sees its own writes. Writes always
go to the primary, even for a row that was read from the replica. Migrations run on the primary only.

Without DATABASE_REPLICA_URL neither the router nor the middleware is installed; `replica_reads()` then
only sets a flag nobody reads.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"


class _RequestScope:
    """One request's routing state. Mutable and shared by reference, so that a write made in a copied
    context (a thread handed the request's context) still pins the request's later reads."""

    __slots__ = ("wrote",)

    def __init__(self) -> None:
        self.wrote = False


_request: contextvars.ContextVar[_RequestScope | None] = contextvars.ContextVar("db_request_scope", default=None)
_prefer_replica: contextvars.ContextVar[bool] = contextvars.ContextVar("db_prefer_replica", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Let the reads of a block (or, as `@replica_reads()`, of a function) go to the replica."""
    token = _prefer_replica.set(True)
    try:
        yield
    finally:
        _prefer_replica.reset(token)


def read_connection(model: type[Model]) -> BaseDatabaseWrapper:
    """The connection the ORM would read `model` from now: raw SQL reading that model belongs there too."""
    return connections[router.db_for_read(model)]


@contextmanager
def request_scope() -> Iterator[_RequestScope]:
    """A fresh routing state: nothing written yet (the middleware opens one per request)."""
    scope = _RequestScope()
    token = _request.set(scope)
    try:
        yield scope
    finally:
        _request.reset(token)


class ReplicaRouter:
    """Sends a request's analytics reads to `replica` until it writes; everything else to the primary."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        scope = _request.get()
        if scope is None or scope.wrote or not _prefer_replica.get():
            return DEFAULT_DB_ALIAS
        # A read inside a transaction on the primary must see that transaction.
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return REPLICA

    def db_for_write(self, model: Any, **hints: Any) -> str:
        scope = _request.get()
        if scope is not None:
            scope.wrote = True
        # Explicitly the primary: left to Django, an instance read from the replica would be saved there.
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the same rows on both: a replica row may point at a primary row

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


class ReplicaRoutingMiddleware:
    """Opens a routing scope per request: reads may go to the replica until the request writes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_scope():
            return self.get_response(request)
