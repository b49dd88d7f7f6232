"""Root URLs: pages, admin, health, metrics, API docs (Swagger UI, ReDoc) and the API under /api/v1/."""

import importlib.util

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from openbench import views
from openbench.api import urls as api_urls
from openbench.api.exceptions import api_not_found

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("ready", views.ready, name="ready"),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    # Sign-in with GitHub, Google or OpenID Connect: allauth's social flows only (SPEC §14).
    path("oauth/", include("accounts.oauth_urls")),
    path("", include("catalog.urls")),
    path("", include("evaluations.urls")),
    path("", include("leaderboard.urls")),
    path("", include("judging.urls")),
    path("", include("monitoring.urls")),
    path("", include("arena.urls")),
    # Ours rather than django_prometheus.urls: the same exporter behind METRICS_TOKEN when it is set.
    path("metrics", views.metrics, name="metrics"),
    path("api/v1", api_urls.api_root, name="api-root-bare"),
    path("api/v1/", include("openbench.api.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Unknown /api/ paths answer the JSON error envelope, also with DEBUG on.
    re_path(r"^api/", api_not_found),
]

# The analytics endpoints (/leaderboard, /analytics/*, /models/{id}/performance) go before the API
# router, so that /models/{id}/performance is theirs; included as soon as leaderboard/api/urls.py exists.
if importlib.util.find_spec("leaderboard.api") and importlib.util.find_spec("leaderboard.api.urls"):
    urlpatterns.insert(
        next(i for i, p in enumerate(urlpatterns) if str(p.pattern) == "api/v1/"),
        path("api/v1/", include("leaderboard.api.urls")),
    )

handler400 = "openbench.api.exceptions.handler400"
handler404 = "openbench.api.exceptions.handler404"
handler500 = "openbench.api.exceptions.handler500"
