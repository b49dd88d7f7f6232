"""Test helpers shared by every app: fake vendor servers speaking each provider's wire format on 127.0.0.1,
and a deployment where no real provider is configured."""

from __future__ import annotations

from typing import Any

from providers.registry import PROVIDER_CLASSES, ProviderEntry


def unconfigure_providers(settings: Any) -> Any:
    """Blank every registered provider's key and base URL on `settings` (pytest-django's fixture, which
    restores them afterwards), so that only the offline mock counts as configured."""
    for line in PROVIDER_CLASSES.values():
        entry = ProviderEntry(*line)
        for name in (entry.key_setting, entry.url_setting):
            if name:
                setattr(settings, name, "")
    return settings
