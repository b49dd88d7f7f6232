"""Writes the providers app makes: registering the models a server lists in the catalog."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from catalog.models import LLMModel
from openbench.exceptions import ApplicationError

# Providers whose servers list what they can run; hosted vendors list far more than chat models.
SYNCABLE_PROVIDERS = ("mes", "ollama", "openai_compatible")


@dataclass
class ModelSyncReport:
    """Names of the catalog rows a sync created, updated or left alone."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def _unique_name(base: str) -> str:
    # "meta-llama/Llama-3.1-8B" and "llama3:8b" keep their word boundaries instead of running together.
    base = slugify(re.sub(r"[/:.@]+", "-", base)).strip("-")[:90] or "model"
    name, suffix = base, 2
    while LLMModel.objects.filter(name=name).exists():
        name, suffix = f"{base}-{suffix}", suffix + 1
    return name


def _same_server(model: LLMModel, base_url: str) -> bool:
    return str((model.config or {}).get("base_url") or "") == base_url


@transaction.atomic
def llm_models_sync(
    *, provider: str, listed: Sequence[Mapping[str, Any]], base_url: str = "", activate: bool = True
) -> ModelSyncReport:
    """Create a catalog row for each listed model not yet registered, and refresh what the server reports
    (context length, JSON support) on the rows that are. Prices, names and descriptions an admin set are
    kept. `base_url` (when not the settings one) goes into the new rows' config, so several servers of
    one provider can coexist; rows are matched on provider, provider model id and that base URL.
    """
    if provider not in SYNCABLE_PROVIDERS:
        raise ApplicationError(
            f"Models can be synced only from {', '.join(SYNCABLE_PROVIDERS)}, not {provider!r}.",
            code="provider_not_syncable",
        )
    report = ModelSyncReport()
    existing = [model for model in LLMModel.objects.filter(provider=provider) if _same_server(model, base_url)]
    by_id = {model.provider_model_id: model for model in existing}
    for entry in listed:
        model_id = str(entry.get("id") or "").strip()
        if not model_id:
            continue
        reported: dict[str, Any] = {}
        if entry.get("context_length"):
            reported["context_length"] = int(entry["context_length"])
        if "supports_json" in entry:
            reported["supports_json_mode"] = bool(entry["supports_json"])
        model = by_id.get(model_id)
        if model is None:
            label = str(entry.get("name") or model_id)
            suffix = f" @ {base_url}" if base_url else ""
            model = LLMModel(
                name=_unique_name(f"{provider}-{model_id}"),
                display_name=f"{label}{suffix}"[:200],
                provider=provider,
                provider_model_id=model_id,
                description=f"Registered from the {provider} server's model list.",
                config={"base_url": base_url} if base_url else {},
                is_active=activate,
                **reported,
            )
            model.full_clean()
            model.save()
            by_id[model_id] = model
            report.created.append(model.name)
            continue
        changed = [name for name, value in reported.items() if getattr(model, name) != value]
        if changed:
            for name in changed:
                setattr(model, name, reported[name])
            model.full_clean()
            model.save(update_fields=[*changed, "updated_at"])
            report.updated.append(model.name)
        else:
            report.unchanged.append(model.name)
    return report
