"""/api/v1: one router for every app's viewsets, plus each app's plain paths."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from accounts.api import urls as accounts_urls
from catalog.api import urls as catalog_urls
from evaluations.api import urls as evaluations_urls
from openbench.api.stats import AdminStatsView

router = DefaultRouter(trailing_slash=False)
for app_urls in (accounts_urls, catalog_urls, evaluations_urls):
    app_urls.register(router)

urlpatterns = [
    *accounts_urls.urlpatterns,
    *catalog_urls.urlpatterns,
    *evaluations_urls.urlpatterns,
    path("admin/stats", AdminStatsView.as_view(), name="admin-stats"),
    path("", include(router.urls)),
]
