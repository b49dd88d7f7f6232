"""Every API error is the one envelope, whoever raises it: DRF, Django, the domain, or a crash."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from accounts.api.views import MeView
from accounts.models import User
from openbench.api.exceptions import handler400, handler404, handler500
from openbench.tests.api import (
    V1,
    assert_error,
    client_for,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_path_is_a_json_404(anonymous: APIClient, settings, debug: bool) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = debug
    assert_error(anonymous.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error(anonymous.get("/api/v2/tests"), 404, "not_found")
    # Trailing slashes are not our URLs (SPEC §7 writes them without), and are not redirected either.
    assert_error(anonymous.post(f"{V1}/tests/", {}, format="json"), 404, "not_found")


def test_a_page_404_stays_html() -> None:
    response = Client().get("/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_a_wrong_method_is_405(owner: User) -> None:
    error = assert_error(client_for(owner).delete(f"{V1}/tests"), 405, "method_not_allowed")
    assert "DELETE" in error["message"]


def test_a_body_over_the_limit_is_413(owner: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"title": "x" * 2000})
    response = client_for(owner).post(f"{V1}/tests", data=body, content_type="application/json")
    assert_error(response, 413, "request_too_large")
    form = client_for(owner).post(f"{V1}/auth/api-keys", data={"name": "x" * 2000}, format="multipart")
    assert_error(form, 413, "request_too_large")


def test_a_body_under_the_limit_is_parsed(owner: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client_for(owner).post(f"{V1}/auth/api-keys", {"name": "small"}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "small"
    assert owner.api_keys.get().name == "small"


def test_django_answers_413_for_a_too_large_body_it_read_itself() -> None:
    request = RequestFactory().post("/api/v1/tests")
    response = handler400(request, RequestDataTooBig("too big"))
    assert response.status_code == 413
    assert json.loads(response.content)["error"]["code"] == "request_too_large"
    assert handler400(request, ValueError("bad")).status_code == 400
    assert handler404(RequestFactory().get("/api/x")).status_code == 404


def test_a_crash_under_api_is_a_json_500(owner: User, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def boom(self, request):  # type: ignore[no-untyped-def]
        raise RuntimeError("secret internals")

    monkeypatch.setattr(MeView, "get", boom)
    client = client_for(owner)
    client.raise_request_exception = False
    response = client.get(f"{V1}/auth/me")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "server_error"
    assert "secret internals" not in response.content.decode()


def test_a_crash_outside_api_is_not_json() -> None:
    request = RequestFactory().get("/tests/")
    response = handler500(request)
    assert response.status_code == 500
    assert not response["Content-Type"].startswith("application/json")


def test_the_request_id_in_the_envelope_is_the_callers(anonymous: APIClient) -> None:
    response = anonymous.get("/api/v1/nothing", HTTP_X_REQUEST_ID="trace-abc-123")
    assert response.json()["error"]["request_id"] == "trace-abc-123"


def test_an_unsupported_media_type_is_415(owner: User) -> None:
    response = client_for(owner).post(f"{V1}/tests", data="<xml/>", content_type="application/xml")
    assert_error(response, 415, "unsupported_media_type")


def test_validation_errors_name_the_fields(owner: User) -> None:
    error = assert_error(client_for(owner).post(f"{V1}/tests", {}, format="json"), 400, "validation_error")
    assert {"title", "category", "prompt", "evaluation_type"} <= set(error["details"])
    assert error["message"].split(":")[0] in error["details"]


def test_the_api_root_answers_with_and_without_its_trailing_slash(anonymous: APIClient) -> None:
    bare, slashed = anonymous.get(V1), anonymous.get(f"{V1}/")
    assert bare.status_code == slashed.status_code == 200
    assert bare.json() == slashed.json()
    assert any(link.endswith("/api/v1/tests") for link in bare.json().values())
