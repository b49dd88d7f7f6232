"""Which adapter serves which provider, and how it is configured from settings.

The one list of providers is PROVIDER_CLASSES below: the catalog's provider choices (and
`LLMModel.Provider`) and the per-provider limits in settings are derived from it. Adding a provider:
write `providers/<vendor>.py` with a Provider subclass and add one line here. Its key and base URL are
read from settings, or from the environment while settings.py does not name them yet.

Adapters are built from plain values: whatever has the attributes of `ModelSpec` (a catalog
`LLMModel`, or a small dataclass in a script) can be given to `provider_for_model`. This module
knows no tables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import environ
from django.conf import settings
from django.utils.module_loading import import_string

from providers.base import Provider, ProviderUnavailableError

logger = logging.getLogger(__name__)


class ProviderEntry(NamedTuple):
    """One registered provider: its adapter class (dotted path, imported on first use, so an unused
    vendor's SDK is never loaded), the settings names of its API key and base URL ("" when it needs
    none), and the label people see ("" = the name, titled)."""

    class_path: str
    key_setting: str = ""
    url_setting: str = ""
    label: str = ""


PROVIDER_CLASSES: dict[str, ProviderEntry] = {
    "mock": ProviderEntry("providers.mock.MockProvider", label="Mock (not a real model)"),
    "openai": ProviderEntry(
        "providers.openai_compatible.OpenAIProvider", "OPENAI_API_KEY", "OPENAI_BASE_URL", "OpenAI"
    ),
    "together": ProviderEntry(
        "providers.openai_compatible.TogetherProvider", "TOGETHER_API_KEY", "TOGETHER_BASE_URL", "Together AI"
    ),
    "openai_compatible": ProviderEntry(
        "providers.openai_compatible.OpenAICompatibleProvider",
        "OPENAI_COMPATIBLE_API_KEY",
        "OPENAI_COMPATIBLE_BASE_URL",
        "OpenAI-compatible server",
    ),
    "anthropic": ProviderEntry(
        "providers.anthropic.AnthropicProvider", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "Anthropic"
    ),
    "google": ProviderEntry("providers.google.GoogleProvider", "GOOGLE_API_KEY", "GOOGLE_BASE_URL", "Google"),
    "mes": ProviderEntry("providers.mes.MESProvider", "MES_API_KEY", "MES_API_URL", "Model Execution Service"),
    "ollama": ProviderEntry("providers.ollama.OllamaProvider", "", "OLLAMA_BASE_URL", "Ollama"),
}

# The built-in providers' names, for settings (per-provider limits) that are read before apps load.
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDER_CLASSES)


class ModelSpec(Protocol):
    """What the registry reads from a model to build its adapter. A catalog `LLMModel` has these."""

    @property
    def provider(self) -> str: ...

    @property
    def config(self) -> Mapping[str, Any] | None: ...

    @property
    def supports_structured_output(self) -> bool: ...

    @property
    def supports_json_mode(self) -> bool: ...


def _entry(provider: str) -> ProviderEntry:
    # A line added at runtime (a test, a plugin) may be a plain tuple without its label.
    return ProviderEntry(*PROVIDER_CLASSES[provider])


def provider_label(provider: str) -> str:
    """The label people see for a registered provider."""
    return _entry(provider).label or provider.replace("_", " ").title()


def provider_choices() -> list[tuple[str, str]]:
    """(name, label) for every registered provider, in registry order."""
    return [(name, provider_label(name)) for name in PROVIDER_CLASSES]


def provider_settings(provider: str) -> tuple[str, str]:
    """(api key, base URL) for a provider from settings; '' where not set."""
    entry = _entry(provider)
    return _setting(entry.key_setting), _setting(entry.url_setting)


def _setting(name: str) -> str:
    if not name:
        return ""
    value = getattr(settings, name, None)
    # A provider added by its registry line alone is configured straight from the environment.
    return str(value) if value is not None else environ.Env().str(name, default="")


def build_provider(provider: str, *, options: Mapping[str, Any] | None = None) -> Provider:
    """An adapter for `provider`; `options` (a model's config) may override `base_url`, never the key.

    The key goes only where `key_may_go_to` says: a base URL override on another host (a row written
    around the catalog's validation, a `--base-url` on the command line) gets an adapter without the key,
    so the call fails with the provider's refusal instead of handing the platform's key to that host.
    """
    adapter_class = provider_class(provider)
    api_key, base_url = provider_settings(provider)
    options = dict(options or {})
    override = str(options.pop("base_url", "") or "")
    if override and api_key and not key_may_go_to(provider, override):
        logger.warning(
            "The %s key is withheld from a base URL on host %r, which is not the provider's configured host "
            "nor in MODEL_HOSTS_ALLOWED.",
            provider,
            _host_of(override),
        )
        api_key = ""
    base_url = override or base_url
    return adapter_class(api_key=api_key, base_url=base_url, options=options)


# --- Which hosts a model may name, and where a key may go (SPEC §10 "Models") ---

_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_allowed_host(entry: str) -> tuple[str, int | None]:
    """("host", port or None) from a MODEL_HOSTS_ALLOWED entry: "host", "host:port" or "[v6]:port".
    ValueError names what is wrong (a scheme, a path, a bad port)."""
    text = entry.strip()
    if not text or "/" in text or "@" in text or "?" in text or "#" in text:
        raise ValueError(f"{entry!r} is not a host name or host:port (no scheme, no path).")
    parts = urlsplit(f"//{text}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{entry!r} has an invalid port.") from None
    if not parts.hostname:
        raise ValueError(f"{entry!r} is not a host name or host:port (no scheme, no path).")
    return parts.hostname.lower(), port


def _origin(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s) URL, the port made explicit; None when it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme.lower()]


def _host_of(url: str) -> str:
    origin = _origin(url)
    return origin[0] if origin else "?"


def _listed_hosts() -> list[tuple[str, int | None]]:
    entries = getattr(settings, "MODEL_HOSTS_ALLOWED", None) or []
    return [parse_allowed_host(entry) for entry in entries if str(entry).strip()]


def _configured_hosts(providers: list[str]) -> list[tuple[str, int | None]]:
    # A configured base URL trusts its whole host: ports on one machine are not a trust boundary, and the
    # test suite's fake vendors listen on random ports of 127.0.0.1.
    hosts: list[tuple[str, int | None]] = []
    for name in providers:
        origin = _origin(provider_settings(name)[1])
        if origin:
            hosts.append((origin[0], None))
    return hosts


def _matches(origin: tuple[str, int], allowed: list[tuple[str, int | None]]) -> bool:
    host, port = origin
    return any(host == allowed_host and allowed_port in (None, port) for allowed_host, allowed_port in allowed)


def allowed_model_hosts() -> list[tuple[str, int | None]]:
    """(host, port or None = any) a model's base URL may name: the hosts of every provider's configured
    base URL, and MODEL_HOSTS_ALLOWED."""
    return [*_configured_hosts(list(PROVIDER_CLASSES)), *_listed_hosts()]


def base_url_problem(value: Any) -> str | None:
    """Why a model's `config.base_url` is refused, or None when it may be stored ('' or absent is fine:
    the provider's configured base URL is used)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return "Must be a URL string."
    origin = _origin(value)
    if origin is None:
        return "Must be an http:// or https:// URL with a host."
    if not _matches(origin, allowed_model_hosts()):
        return f"Host {origin[0]!r} is not allowed: add it to MODEL_HOSTS_ALLOWED or use a configured provider's host."
    return None


def key_may_go_to(provider: str, url: str) -> bool:
    """Whether `provider`'s key may be sent to `url`: its own configured base URL's host, or a host in
    MODEL_HOSTS_ALLOWED. Other providers' hosts are allowed for models, not for this key."""
    origin = _origin(url)
    if origin is None:
        return False
    return _matches(origin, [*_configured_hosts([provider]), *_listed_hosts()])


def model_options(model: ModelSpec) -> dict[str, Any]:
    """The adapter options for a model: those its catalog capabilities imply, overridden by its `config`."""
    implied = provider_class(model.provider).capability_options(
        structured_output=model.supports_structured_output, json_mode=model.supports_json_mode
    )
    return {**implied, **(model.config or {})}


def provider_for_model(model: ModelSpec) -> Provider:
    """An adapter configured for `model` (ProviderUnavailableError when its provider has no adapter)."""
    return build_provider(model.provider, options=model_options(model))


def provider_class(provider: str) -> type[Provider]:
    """The adapter class registered for `provider` (ProviderUnavailableError when there is none)."""
    if provider not in PROVIDER_CLASSES:
        raise ProviderUnavailableError(f"No adapter is registered for provider {provider!r}.")
    adapter_class: type[Provider] = import_string(_entry(provider).class_path)
    return adapter_class


def is_configured(provider: str, *, options: Mapping[str, Any] | None = None) -> bool:
    """Whether `provider` can be called here: registered, with its key and base URL (a model's config may
    supply the base URL). Cheap: builds no network client."""
    if provider not in PROVIDER_CLASSES:
        return False
    return build_provider(provider, options=options).is_configured


def configured_providers() -> list[str]:
    """Registered providers that have what they need in settings, in registry order."""
    return [name for name in PROVIDER_CLASSES if is_configured(name)]


def adapter_key(model: ModelSpec) -> tuple[str, str]:
    """Models with equal keys can share one adapter (and its connection pools): the provider, and the
    model's adapter options with the base URL resolved, as canonical JSON (options like `accuracy` or
    `structured_output` live on the adapter, so they are part of the key)."""
    if model.provider not in PROVIDER_CLASSES:
        return model.provider, json.dumps(dict(model.config or {}), sort_keys=True, default=str)
    options = model_options(model)
    options["base_url"] = options.get("base_url") or provider_settings(model.provider)[1]
    return model.provider, json.dumps(options, sort_keys=True, default=str)
