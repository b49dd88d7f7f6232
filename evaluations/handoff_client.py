"""The Redis connection of manage.py's `run_batch --wait` hand-off (evaluations.batch_handoff), before Django.

Importing redis-py takes 0.12-0.17 s here (it loads its asyncio client, and asyncio, with it): more than all the
rest the command did before its request reached a worker. The hand-off needs a handful of commands on one
connection, so it speaks to Redis through hiredis (Redis's own protocol reader and writer, a C extension that
imports in about a millisecond) over a plain socket. The request is on the queue ~0.1 s sooner, and the command
imports Django, redis-py and rq afterwards, while a worker starts the batch on the other core.

URLs: redis://[[user]:password@]host[:port][/db], rediss://... (TLS, the server's certificate and host name
checked, as redis-py does by default) and unix://[[user]:password@]/path[?db=N]. A URL with any other query
parameter (one of redis-py's connection options) is refused with ValueError: such a command line is not handed
off, and the command starts its batch itself, as without Redis.

Like batch_handoff, nothing of Django or of the apps is imported here.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis


class HandoffRedisError(Exception):
    """Redis answered a command with an error, or the connection broke."""


class HandoffConnection:
    """One connection at a time; `execute` sends commands in one write and returns their replies in order.

    A conversation cut short (a timeout, Ctrl-C while BLPOP blocks) closes the connection, since a reply may still
    be on its way on it; the next `execute` opens a new one."""

    def __init__(self, url: str, *, connect_timeout: float) -> None:
        self.connect_timeout = connect_timeout
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        if set(query) - {"db"} or (parts.scheme != "unix" and query):
            raise ValueError("Only the database may be given in the query, and only in a unix:// URL.")
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"Not a Redis URL scheme: {parts.scheme!r}.")
        self._parts = parts
        db = query["db"][0] if "db" in query else parts.path.strip("/") if parts.scheme != "unix" else ""
        if not (db or "0").isdigit():
            raise ValueError(f"The database in a Redis URL is a number, not {db!r}.")
        self._db = int(db or 0)
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader()

    def _connect(self) -> socket.socket:
        parts, timeout = self._parts, self.connect_timeout
        sock: socket.socket
        if parts.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            host = parts.hostname or "localhost"
            sock = socket.create_connection((host, parts.port or 6379), timeout=timeout)
        try:
            if parts.scheme == "unix":
                sock.settimeout(timeout)
                sock.connect(unquote(parts.path))
            else:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if parts.scheme == "rediss":
                    import ssl

                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            self._sock, self._reader = sock, hiredis.Reader()
            setup: list[tuple[Any, ...]] = []
            if parts.password is not None:
                user = (unquote(parts.username),) if parts.username else ()
                setup.append(("AUTH", *user, unquote(parts.password)))
            if self._db:
                setup.append(("SELECT", self._db))
            self._exchange(sock, setup, timeout)
        except BaseException:  # refused AUTH or SELECT, a failed handshake: no half-set-up connection is kept
            sock.close()
            self._sock = None
            raise
        return sock

    def execute(self, *commands: tuple[Any, ...], timeout: float = 5.0) -> list[Any]:
        """Each command's reply (bytes, int, None for nil, a list); HandoffRedisError if one was an error."""
        try:
            sock = self._sock or self._connect()
            return self._exchange(sock, list(commands), timeout)
        except OSError as exc:  # refused, timed out, broken: the caller decides what that means
            raise HandoffRedisError(f"{type(exc).__name__}: {exc}") from exc

    def _exchange(self, sock: socket.socket, commands: list[tuple[Any, ...]], timeout: float) -> list[Any]:
        replies: list[Any] = []
        try:
            sock.settimeout(timeout)
            sock.sendall(b"".join(hiredis.pack_command(command) for command in commands))
            while len(replies) < len(commands):
                reply = self._reader.gets()
                if reply is False:  # not all of it has arrived
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionResetError("Redis closed the connection.")
                    self._reader.feed(data)
                    continue
                replies.append(reply)
        except BaseException:
            self.close()
            raise
        for reply in replies:
            if isinstance(reply, hiredis.ReplyError):
                raise HandoffRedisError(str(reply))
        return replies

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
