#!/usr/bin/env python
"""Django's command-line utility."""

import functools
import gc
import os
import sys
from collections.abc import Callable
from typing import Any


def _setup_uncollected(setup: Callable[..., Any]) -> Callable[..., Any]:
    """django.setup() without the cyclic garbage collector, then its heap frozen.

    Importing Django, the apps and their models creates ~100,000 objects that live as long as the
    process; on the way the collector ran ~280 times over them (0.07-0.1 s of every command's start),
    and the full collections later in the command (run_batch's hundreds of executions) walked them
    again (0.1-0.3 s more). Frozen, they are left out of every later collection.
    """

    @functools.wraps(setup)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        gc.disable()
        try:
            return setup(*args, **kwargs)
        finally:
            gc.enable()
            gc.freeze()

    return wrapper


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openbench.settings")
    # `run_batch ... --wait` with Redis: the request goes to a worker now, and Django is set up while the worker
    # starts the batch's calls (evaluations.batch_handoff). Any other command line: nothing happens here.
    from evaluations.batch_handoff import hand_off, report_unclaimed

    hand_off(sys.argv)
    import django
    from django.core.management import execute_from_command_line

    # execute_from_command_line calls django.setup() (runserver through its autoreloader's error guard).
    django.setup = _setup_uncollected(django.setup)
    try:
        execute_from_command_line(sys.argv)
    finally:
        report_unclaimed()


if __name__ == "__main__":
    main()
