"""Execution pages: /tests/<id>/run/ (POST), /executions/, /executions/<id>/ and its cancel (POST)."""

from django.urls import path

from evaluations import views

app_name = "evaluations"

urlpatterns = [
    path("tests/<uuid:pk>/run/", views.test_case_run, name="test-run"),
    path("executions/", views.execution_list, name="execution-list"),
    path("executions/<uuid:pk>/", views.execution_detail, name="execution-detail"),
    path("executions/<uuid:pk>/cancel/", views.execution_cancel_view, name="execution-cancel"),
]
