"""Ask every configured provider whether it answers, and how fast."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.models import LLMModel
from providers.base import HealthReport, Provider
from providers.registry import PROVIDER_CLASSES, build_provider, provider_settings


def _targets(include_models: bool) -> list[tuple[str, str]]:
    """(provider, base URL override or "") for each configured provider, plus every other server that
    active models point at through their config (several OpenAI-compatible servers, say)."""
    targets = [(name, "") for name in PROVIDER_CLASSES]
    if include_models:
        seen = {(name, provider_settings(name)[1]) for name in PROVIDER_CLASSES}
        for model in LLMModel.objects.active().filter(provider__in=list(PROVIDER_CLASSES)).order_by("provider", "name"):
            base_url = str((model.config or {}).get("base_url") or "")
            if base_url and (model.provider, base_url) not in seen:
                seen.add((model.provider, base_url))
                targets.append((model.provider, base_url))
    return targets


async def _check_all(adapters: list[Provider]) -> list[HealthReport]:
    async def check(adapter: Provider) -> HealthReport:
        try:
            return await adapter.health()
        finally:
            await adapter.aclose()

    return list(await asyncio.gather(*(check(adapter) for adapter in adapters)))


class Command(BaseCommand):
    help = "Check every configured provider: does it answer, and how fast. Exits 1 when one does not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-models", action="store_true", help="Check only the servers in settings, not models' base URLs."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        adapters: list[Provider] = []
        for provider, base_url in _targets(include_models=not options["no_models"]):
            adapter = build_provider(provider, options={"base_url": base_url} if base_url else None)
            if adapter.is_configured:
                adapters.append(adapter)
            else:
                self.stdout.write(f"-     {provider:<18} {adapter.unconfigured_reason()}")
        reports = asyncio.run(_check_all(adapters))
        failed = 0
        for adapter, report in zip(adapters, reports, strict=True):
            # Base URLs may carry credentials in some setups (user:pass@host); show the host part only.
            where = adapter.base_url.split("@")[-1] or "(offline)"
            line = f"{adapter.name:<18} {where:<45} {report.latency_ms:>6} ms  {report.detail}"
            if report.ok:
                self.stdout.write(self.style.SUCCESS(f"ok    {line}"))
            else:
                failed += 1
                self.stdout.write(self.style.ERROR(f"DOWN  {line}"))
        if failed:
            raise CommandError(f"{failed} of {len(adapters)} configured providers did not answer.")
