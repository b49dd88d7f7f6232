"""The engine's budget checks (SPEC §11), throttled: overruns judged in memory between database checks,
finished runs settled together.

Checking every execution of a written batch against the database after each flush (0.1 s) and settling
each execution the moment it finished took more of the worker's database thread than writing the results
themselves. A BudgetWatch, one per engine, keeps the behaviour and drops the repetition:

* An execution whose cost moved is checked against the database (`budget_stop_overruns`: its reserve,
  and its batch's, with what every worker has spent on it) when it was never checked, or at most every
  CHECK_INTERVAL seconds after that, and once more at the end of the engine's run. An overrun is judged
  on the execution alone or on its whole batch (its "group"), so the interval runs per group: a batch
  of 500 executions is one check a second, not one for each execution whose first result came in.
* Between two checks, each write is judged in memory: the actual cost the last check read plus what this
  engine has written since, against the reserve × BUDGET_OVERRUN_FACTOR. A write that pushes a run past
  its limit is checked (and the run stopped) at once, as before; only what other workers spend on the
  same batch is seen up to CHECK_INTERVAL late.
* Finished executions are settled together, at most every SETTLE_INTERVAL seconds and at the end of the
  run, after `executions_finished` was announced (nobody waits on it). A worker that dies in between
  leaves held reserves of finished runs, which `recover_executions` settles (budget_release_finished),
  as it always did for a crash between closing and settling.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal

from evaluations.budgets import ZERO, budget_settle
from evaluations.overruns import Spend, budget_stop_overruns, overrun_factor

CHECK_INTERVAL = 1.0  # seconds between database checks of an execution whose cost moved
SETTLE_INTERVAL = 1.0  # seconds between settlements of the executions finished meanwhile


class BudgetWatch:
    """Overrun checks and settling for one engine; its methods run on the engine's database thread."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.dirty: set[str] = set()  # executions whose cost moved since their last check
        self.checked_at: dict[str, float] = {}  # by group
        self.group_of: dict[str, str] = {}  # execution -> its Spend's group (itself, or its batch)
        self.groups: dict[str, Spend] = {}  # as the last check read it
        self.extra: dict[str, Decimal] = defaultdict(lambda: ZERO)  # by group: written by us since that read
        self.to_settle: set[str] = set()
        self.settled_at = clock()

    def pending(self) -> bool:
        """Whether the end of the run has something to do here."""
        return bool(self.to_settle or self.dirty)

    def after_write(self, *, costs: dict[str, Decimal]) -> set[str]:
        """After results were saved (committed): `costs` is what they added to each execution. Checks the
        executions that are due and returns those stopped for an overrun."""
        factor = overrun_factor()
        for execution_id, cost in costs.items():
            if not cost:
                continue
            self.dirty.add(execution_id)
            group = self.group_of.get(execution_id)
            if group is not None:
                self.extra[group] += cost
        now = self.clock()
        over = {group for group, extra in self.extra.items() if self._over(group, extra, factor)}
        due = {execution_id for execution_id in self.dirty if self._due(self.group_of.get(execution_id), now, over)}
        return self._check(due, now) if due else set()

    def _due(self, group: str | None, now: float, over: set[str]) -> bool:
        if group is None or group in over:  # never checked, or pushed past its limit by our own writes
            return True
        return now - self.checked_at.get(group, float("-inf")) >= CHECK_INTERVAL

    def _over(self, group: str, extra: Decimal, factor: Decimal) -> bool:
        spend = self.groups.get(group)
        return spend is not None and spend.actual + extra > spend.reserved * factor

    def _check(self, due: set[str], now: float) -> set[str]:
        stopped, _, spends = budget_stop_overruns(execution_ids=due, known_groups=set(self.groups))
        for execution_id, spend in spends.items():
            self.group_of[execution_id] = spend.group
            self.groups[spend.group] = spend
            self.extra.pop(spend.group, None)  # the actual cost just read includes what we wrote
            self.checked_at[spend.group] = now
        for execution_id in due - spends.keys():  # no reserve to judge against (finished, or none held)
            self.group_of[execution_id] = f"unreserved:{execution_id}"
            self.checked_at[self.group_of[execution_id]] = now
        checked = {spend.group for spend in spends.values()}  # a batch's other executions: known from now on
        # Checked too: every execution of a group just read (the group's actual cost includes theirs).
        self.dirty -= due | {e for e in self.dirty if self.group_of.get(e) in checked}
        return stopped

    def after_close(self, *, finished: Iterable[str], final: bool) -> None:
        """Executions the engine is done with: settle them (with those waiting) when SETTLE_INTERVAL has
        passed or the run ends (`final`), which also checks what is still unchecked one last time."""
        self.to_settle.update(finished)
        now = self.clock()
        if final and self.dirty:
            self._check(set(self.dirty), now)
        if not self.to_settle or (not final and now - self.settled_at < SETTLE_INTERVAL):
            return
        settling, self.to_settle = self.to_settle, set()
        budget_settle(execution_ids=settling)
        self.settled_at = now
        self._forget(settling)

    def _forget(self, execution_ids: set[str]) -> None:
        """What a settled execution left here (a long-running worker's memory stays flat)."""
        self.dirty -= execution_ids
        for execution_id in execution_ids:
            self.group_of.pop(execution_id, None)
        alive = set(self.group_of.values())
        for group in [group for group in self.checked_at if group not in alive]:
            self.groups.pop(group, None)
            self.extra.pop(group, None)
            del self.checked_at[group]
