"""Judging pages: /judges/ and the label buttons' target."""

from django.urls import path

from judging import views

app_name = "judging"

urlpatterns = [
    path("judges/", views.judge_list, name="judge-list"),
    path("results/<uuid:pk>/label/", views.result_label_view, name="result-label"),
]
