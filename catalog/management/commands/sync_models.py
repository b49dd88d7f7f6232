"""Register in the catalog the models a MES, Ollama or OpenAI-compatible server lists."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.services import SYNCABLE_PROVIDERS, llm_models_sync
from openbench.exceptions import ApplicationError
from providers import registry
from providers.base import Provider, ProviderError
from providers.registry import build_provider


async def _listed(adapter: Provider) -> list[dict[str, Any]]:
    try:
        return await adapter.list_models()
    finally:
        await adapter.aclose()


class Command(BaseCommand):
    help = "Create or update catalog models from the list a MES, Ollama or OpenAI-compatible server offers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", required=True, choices=SYNCABLE_PROVIDERS)
        parser.add_argument(
            "--base-url",
            default="",
            help="A server other than the one in settings; stored in the new models' config.",
        )
        parser.add_argument("--inactive", action="store_true", help="Register new models as inactive.")

    def handle(self, *args: Any, **options: Any) -> None:
        provider: str = options["provider"]
        base_url: str = options["base_url"]
        # Refused before any request: the listing call would carry the provider's key to that host.
        problem = registry.base_url_problem(base_url)
        if problem:
            raise CommandError(f"--base-url: {problem}")
        adapter = build_provider(provider, options={"base_url": base_url} if base_url else None)
        try:
            listed = asyncio.run(_listed(adapter))
        except ProviderError as exc:
            raise CommandError(f"Could not list the {provider} models: {exc.message}") from None
        try:
            report = llm_models_sync(
                provider=provider, listed=listed, base_url=base_url, activate=not options["inactive"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        except ValidationError as exc:
            raise CommandError(f"A listed model could not be registered: {'; '.join(exc.messages)}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{provider}: {len(listed)} listed, {len(report.created)} created, "
                f"{len(report.updated)} updated, {len(report.unchanged)} unchanged."
            )
        )
        for name in report.created:
            self.stdout.write(f"  + {name}")
        for name in report.updated:
            self.stdout.write(f"  ~ {name}")
