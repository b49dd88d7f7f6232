"""Monitoring pages: suites (read, run, new/edit/delete), schedules, alerts."""

from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("suites/", views.suite_list, name="suite-list"),
    path("suites/new/", views.suite_create_view, name="suite-create"),
    path("suites/<uuid:pk>/", views.suite_detail, name="suite-detail"),
    path("suites/<uuid:pk>/edit/", views.suite_edit, name="suite-edit"),
    path("suites/<uuid:pk>/delete/", views.suite_delete_view, name="suite-delete"),
    path("suites/<uuid:pk>/run/", views.suite_run, name="suite-run"),
    path("monitoring/schedules/", views.schedule_list, name="schedule-list"),
    path("monitoring/alerts/", views.alert_list, name="alert-list"),
    path("monitoring/alerts/<uuid:pk>/acknowledge/", views.alert_acknowledge_view, name="alert-acknowledge"),
]
