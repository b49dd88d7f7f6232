"""Run approved tests (all, or a category/tag/selection) against a set of models, one execution per test."""

from __future__ import annotations

import argparse
import functools
import gc
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Q, Sum

from catalog.models import LLMModel, TestCase
from evaluations import batch_handoff
from evaluations.batch_selection import (
    BatchRefused,
    batch_estimate,
    estimate_line,
    needs_confirmation,
    select_batch,
)
from evaluations.estimates import RunEstimate
from evaluations.models import Execution
from evaluations.services import executions_start_batch
from openbench.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Run approved tests against models (one execution per test); --wait shows progress and a summary."
    # No system checks: they import every URLconf and view (DRF, the schema, the admin) before the run can
    # start, a second of the command's own time on each use; `manage.py check` and deployments run them.
    requires_system_checks: list[str] = []

    def run_from_argv(self, argv: list[str]) -> None:
        try:
            super().run_from_argv(argv)
        finally:
            # From the command line the process ends here: frozen, Django's heap is left out of the
            # interpreter's last garbage collections, which took 0.4-0.8 s of every run_batch's exit.
            gc.freeze()

    def add_arguments(self, parser: CommandParser) -> None:
        batch_handoff.add_run_batch_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:  # the command line's parser checks it too; call_command's keyword arguments skip the parser
            batch_handoff.seconds_above_zero(str(options["poll"]))
        except argparse.ArgumentTypeError as exc:
            raise CommandError(f"--poll {exc}") from None
        started = self._handed_off()
        if started is None:
            started = self._start_here(options)
            if started is None:
                return
        batch_id, total = started
        if not options["wait"] and settings.USE_RQ:
            self.stdout.write("Queued for the rq workers (`manage.py rqworker evaluations`); not waiting.")
            return
        if not options["wait"]:
            self.stdout.write("No REDIS_URL: running in this process; waiting for it to finish.")
        self._wait(batch_id, total, poll=options["poll"])
        failed = self._summary(batch_id)
        if failed:
            self.stderr.write(self.style.ERROR(f"{failed} execution(s) failed."))
            sys.exit(1)

    def _handed_off(self) -> tuple[Any, int] | None:
        """The batch a worker started from the request manage.py handed off before Django was set up
        (evaluations.batch_handoff): (batch id, evaluations), or None to start it here (no request, no worker
        took it, or the estimate needs asking)."""
        outcome = batch_handoff.take_outcome()
        if outcome is None:
            return None
        if outcome.error:
            raise CommandError(outcome.error)
        answer = outcome.answer
        if answer is None or answer["status"] in ("confirm", "elsewhere"):
            return None  # nobody started it: asked here, or (a worker of another database answered) started here
        if answer["status"] != "started":
            raise CommandError(answer["message"])
        found = Execution.objects.filter(batch_id=answer["batch_id"]).aggregate(total=Sum("total_evaluations"))
        if found["total"] is None:
            raise CommandError(
                f"A worker answered that it started batch {answer['batch_id']}, but this database has no such batch: "
                "that worker uses another database (compare its DATABASE_URL with this command's)."
            )
        for line in answer["lines"]:
            self.stdout.write(line)
        return answer["batch_id"], int(found["total"])

    def _start_here(self, options: dict[str, Any]) -> tuple[Any, int] | None:
        try:
            chosen = select_batch(options)
        except BatchRefused as exc:
            raise CommandError(exc.message) from exc
        options["repeats"] = chosen.repeats
        approved, estimate = self._cost_approved(chosen.tests, chosen.models, options)
        if not approved:
            return None
        try:
            executions = executions_start_batch(
                test_cases=chosen.tests,
                models=chosen.models,
                started_by=chosen.user,
                repeats=chosen.repeats,
                estimate=estimate,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        total = sum(execution.total_evaluations for execution in executions)
        self.stdout.write(
            f"Started {len(executions)} executions ({total} evaluations), batch {executions[0].batch_id}."
        )
        return executions[0].batch_id, total

    def _cost_approved(
        self, tests: list[TestCase], models: list[LLMModel] | None, options: dict[str, Any]
    ) -> tuple[bool, RunEstimate | None]:
        """Before anything starts (SPEC §11): with --estimate print the estimate and say no; above
        RUN_BATCH_CONFIRM_USD ask `Proceed? [y/N]` (refused without a terminal to ask on) unless --yes.
        Also the estimate it made, if any: the start reserves it rather than making it again."""
        if options["yes"] and not options["estimate"]:
            return True, None
        estimate = batch_estimate(tests, models, options["repeats"])
        if options["estimate"]:
            self._print_estimate(estimate)
            self.stdout.write("Estimate only: nothing was started.")
            return False, estimate
        if not needs_confirmation(estimate):
            self.stdout.write(estimate_line(estimate))
            return True, estimate
        self._print_estimate(estimate)
        threshold = Decimal(settings.RUN_BATCH_CONFIRM_USD)
        above = f"The estimated cost ${estimate.total_usd:.4f} is above RUN_BATCH_CONFIRM_USD (${threshold:.2f})"
        if not sys.stdin or not sys.stdin.isatty():
            raise CommandError(
                f"{above} and there is no terminal to confirm on; nothing was started. Add --yes to run it."
            )
        self.stdout.write(f"{above}. Proceed? [y/N] ", ending="")
        self.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            raise CommandError("Not confirmed; nothing was started.")
        return True, estimate

    def _print_estimate(self, estimate: RunEstimate) -> None:
        header = f"{'model':40} {'evals':>7} {'tokens in':>11} {'tokens out':>11} {'cost (USD)':>12}"
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        for item in estimate.by_model:
            self.stdout.write(
                f"{item.model.name[:40]:40} {item.evaluations:>7} {item.input_tokens:>11,} {item.output_tokens:>11,} "
                f"{item.cost_usd:>12.6f}"
            )
        if estimate.judge_cost_usd:
            self.stdout.write(
                f"{'judge (llm_judge tests)':40} {'':>7} {'':>11} {'':>11} {estimate.judge_cost_usd:>12.6f}"
            )
        self.stdout.write(
            f"{'total':40} {estimate.evaluations:>7} {estimate.input_tokens:>11,} {estimate.output_tokens:>11,} "
            f"{estimate.total_usd:>12.6f}"
        )

    def _wait(self, batch_id: Any, total: int, *, poll: float) -> None:
        """Draw the bar until every execution has finished: woken at once when one of the batch's finishes (the
        engine announces them), re-reading the rows every `poll` seconds for progress (and if a wake-up is lost)."""
        from tqdm import tqdm

        from evaluations.runner.notify import FinishWaiter

        waiter = FinishWaiter()  # subscribed before the first read, so no announcement falls in between
        executions = Execution.objects.filter(batch_id=batch_id)
        # Read when first needed: a batch already finished at the first read costs that one read only.
        ours = functools.cache(lambda: {str(pk) for pk in executions.values_list("pk", flat=True)})
        unfinished = Q(status__in=[Execution.Status.PENDING, Execution.Status.RUNNING])
        try:
            with tqdm(total=total, unit="eval", file=sys.stderr, dynamic_ncols=True) as bar:
                while True:
                    # One indexed read per wake-up: progress and what is still open together, by batch.
                    state = executions.aggregate(done=Sum("progress"), open=Count("pk", filter=unfinished))
                    bar.update((state["done"] or 0) - bar.n)
                    if not state["open"]:
                        break
                    _wait_for_ours(waiter, ours, poll)
        finally:
            waiter.close()

    def _summary(self, batch_id: Any) -> int:
        # Only what the table shows: not each execution's snapshot and each test's prompt and outputs.
        columns = ("status", "progress", "total_evaluations", "successful_evaluations", "failed_evaluations")
        rows = (
            Execution.objects.filter(batch_id=batch_id)
            .select_related("test_case")
            .only(*columns, "score_sum", "scored_count", "total_cost", "test_case__title")
            .order_by("test_case__title")
        )
        header = f"{'test':40} {'status':10} {'done':>9} {'ok':>5} {'failed':>6} {'avg score':>9} {'cost':>12}"
        lines = [header, "-" * len(header)]
        failed = 0
        for execution in rows:
            failed += execution.status == Execution.Status.FAILED
            avg = f"{execution.avg_score:.3f}" if execution.avg_score is not None else "-"
            lines.append(
                f"{execution.test_case.title[:40]:40} {execution.status:10} "
                f"{execution.progress:>4}/{execution.total_evaluations:<4} {execution.successful_evaluations:>5} "
                f"{execution.failed_evaluations:>6} {avg:>9} {execution.total_cost:>12.6f}"
            )
        self.stdout.write("\n".join(lines))  # one write for the whole table, however many tests
        return failed


def _wait_for_ours(waiter: Any, ours: Callable[[], set[str]], poll: float) -> None:
    """Until one of `ours()` is announced finished, something finished in this process, or `poll` seconds pass.
    Every run on the platform announces its finishes: a busy platform must not cost each waiting command a
    read of its rows for every one of them."""
    deadline = time.monotonic() + poll
    while (left := deadline - time.monotonic()) > 0:
        announced = waiter.wait(left)
        if announced is None or (announced and not announced.isdisjoint(ours())):
            return
