"""Catalog pages: /tests/ (list, new, detail, edit, archive) and /models/."""

from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("tests/", views.test_list, name="test-list"),
    path("tests/new/", views.test_create, name="test-create"),
    path("tests/<uuid:pk>/", views.test_detail, name="test-detail"),
    path("tests/<uuid:pk>/edit/", views.test_edit, name="test-edit"),
    path("tests/<uuid:pk>/archive/", views.test_archive, name="test-archive"),
    path("models/", views.model_list, name="model-list"),
]
