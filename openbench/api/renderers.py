"""DRF's browsable API under our Content-Security-Policy."""

from __future__ import annotations

from typing import Any

from csp.constants import UNSAFE_INLINE
from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """The browsable API, allowed the few `style="..."` attributes DRF's own templates use (a floated
    button, the search box's width). Only on these responses: our pages need none, and a style attribute
    runs no script. Its syntax-highlighting <style> block carries the nonce (templates/rest_framework/api.html).
    """

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> Any:
        response = (renderer_context or {}).get("response")
        if response is not None:
            # Read by django-csp's middleware, as its @csp_replace decorator would set it.
            response._csp_replace = {"style-src-attr": [UNSAFE_INLINE]}
        return super().render(data, accepted_media_type, renderer_context)
