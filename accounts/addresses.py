"""The client's address, read one way for every limit: axes' log-in locks and DRF's throttles."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings


def client_ip(request: Any) -> str | None:
    """The client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT = N the N-th address of
    X-Forwarded-For counted from the right.

    Only the addresses our own proxies appended can be trusted; anything further left is whatever the
    client wrote, so with N = 0 the header is ignored. DRF's throttles use the same rule
    (REST_FRAMEWORK["NUM_PROXIES"] and openbench.api.throttles), so neither limit can be dodged by
    sending a new X-Forwarded-For on every try. A value that is not an address (a misconfigured
    count reaching into client-written text) falls back to REMOTE_ADDR rather than being trusted.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    count = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0))
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if count <= 0 or not forwarded:
        return remote
    hops = forwarded.split(",")
    candidate = hops[-min(count, len(hops))].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
