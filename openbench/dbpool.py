"""The database connection pool across a fork.

A psycopg pool belongs to the process that opened it: its connections are sockets, and its maintenance
runs in threads that a fork does not copy. A process that forks after using the database (rq's worker
forks a work horse per job; gunicorn --preload forks its workers) must not hand its pool to the child,
where parent and child would talk over the same sockets. So before every fork the parent gives back
its own thread's connections and closes its pools; the child opens pools of its own on first use, and
so does the parent.
"""

from __future__ import annotations

import os


def close_pools_before_fork() -> None:
    """Give back this thread's connections and close every connection pool of this process."""
    from django.db import connections

    for alias in connections:
        wrapper = connections[alias]
        if not hasattr(wrapper, "close_pool"):
            continue  # not PostgreSQL: no pool
        if not wrapper.in_atomic_block:  # a transaction (a test's) stays as it is
            wrapper.close()
        wrapper.close_pool()


def install() -> None:
    """Close the pools before every os.fork() of this process (once per process)."""
    os.register_at_fork(before=close_pools_before_fork)
