from typing import Any

from django.apps import AppConfig
from django.contrib import admin
from django.contrib.admin.apps import SimpleAdminConfig
from django.contrib.admin.checks import check_admin_app, check_dependencies
from django.core import checks
from django.urls import URLPattern, URLResolver


class OpenBenchConfig(AppConfig):
    """The project package as an app: its one job is per-process start-up that belongs to no feature."""

    name = "openbench"

    def ready(self) -> None:
        from openbench import tracing

        # Here, once per process and before any request or job: web (wsgi, asgi, runserver), rq workers
        # (their forked work horses inherit it), commands, and the in-process executor's threads.
        tracing.setup()


class AdminSite(admin.AdminSite):
    """Django's admin site, which imports the apps' admin modules when its URLs are first built."""

    def get_urls(self) -> list[URLPattern | URLResolver]:
        admin.autodiscover()  # a no-op after the first time
        return super().get_urls()


def check_admin_after_discovery(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """The admin's own system checks, over every app's ModelAdmins (discovered first, whatever the order
    the checks run in)."""
    admin.autodiscover()
    return check_admin_app(app_configs, **kwargs)


class AdminConfig(SimpleAdminConfig):
    """django.contrib.admin without discovery at start-up: the apps' admin modules import their services
    (and with them numpy, the scoring, the arena's ratings), which every command and rq worker paid for
    at start-up (~0.1 s of CPU) although only the admin's pages and its system checks use them. The
    admin's URLs (AdminSite.get_urls, when openbench.urls is loaded) and its checks discover them."""

    default_site = "openbench.apps.AdminSite"

    def ready(self) -> None:
        checks.register(check_dependencies, checks.Tags.admin)
        checks.register(check_admin_after_discovery, checks.Tags.admin)
