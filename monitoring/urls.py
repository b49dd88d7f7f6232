"""Monitoring pages: suites, schedules, alerts."""

from django.urls import path

from monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("suites/", views.suite_list, name="suite-list"),
    path("suites/<uuid:pk>/", views.suite_detail, name="suite-detail"),
    path("monitoring/schedules/", views.schedule_list, name="schedule-list"),
    path("monitoring/alerts/", views.alert_list, name="alert-list"),
    path("monitoring/alerts/<uuid:pk>/acknowledge/", views.alert_acknowledge_view, name="alert-acknowledge"),
]
