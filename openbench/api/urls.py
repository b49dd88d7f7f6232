"""/api/v1: one router for every app's viewsets, plus each app's plain paths."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from accounts.api import urls as accounts_urls
from arena.api import urls as arena_urls
from catalog.api import urls as catalog_urls
from evaluations.api import urls as evaluations_urls
from judging.api import urls as judging_urls
from monitoring.api import urls as monitoring_urls
from openbench.api.stats import AdminStatsView

router = DefaultRouter(trailing_slash=False)
for app_urls in (accounts_urls, catalog_urls, evaluations_urls, judging_urls, monitoring_urls, arena_urls):
    app_urls.register(router)

# The API root, for /api/v1 as SPEC §7 writes paths (no trailing slash); /api/v1/ is the router's own.
api_root = router.get_api_root_view()

urlpatterns = [
    *accounts_urls.urlpatterns,
    *catalog_urls.urlpatterns,
    *evaluations_urls.urlpatterns,
    *judging_urls.urlpatterns,
    *monitoring_urls.urlpatterns,
    *arena_urls.urlpatterns,
    path("admin/stats", AdminStatsView.as_view(), name="admin-stats"),
    path("", include(router.urls)),
]
