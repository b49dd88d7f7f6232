"""The OpenAPI document: generated without warnings, complete, and saying what SPEC §7 says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

from openbench.tests.api import EXECUTION_FIELDS, RESULT_FIELDS

pytestmark = pytest.mark.django_db

SPEC_OPERATIONS = {
    ("/api/v1/auth/register", "post"),
    ("/api/v1/auth/login", "post"),
    ("/api/v1/auth/refresh", "post"),
    ("/api/v1/auth/logout", "post"),
    ("/api/v1/auth/me", "get"),
    ("/api/v1/auth/api-keys", "get"),
    ("/api/v1/auth/api-keys", "post"),
    ("/api/v1/auth/api-keys/{id}", "delete"),
    ("/api/v1/tests", "get"),
    ("/api/v1/tests", "post"),
    ("/api/v1/tests/{id}", "get"),
    ("/api/v1/tests/{id}", "put"),
    ("/api/v1/tests/{id}", "patch"),
    ("/api/v1/tests/{id}", "delete"),
    ("/api/v1/tests/{id}/run", "post"),
    ("/api/v1/tests/{id}/results", "get"),
    ("/api/v1/models", "get"),
    ("/api/v1/models", "post"),
    ("/api/v1/models/{id}", "get"),
    ("/api/v1/models/{id}", "put"),
    ("/api/v1/models/{id}", "patch"),
    ("/api/v1/models/{id}", "delete"),
    ("/api/v1/executions", "get"),
    ("/api/v1/executions/{id}", "get"),
    ("/api/v1/executions/{id}/results", "get"),
    ("/api/v1/executions/{id}/cancel", "post"),
    ("/api/v1/admin/pending", "get"),
    ("/api/v1/admin/approve/{test_id}", "post"),
    ("/api/v1/admin/reject/{test_id}", "post"),
    ("/api/v1/admin/stats", "get"),
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = Client().get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    document: dict[str, Any] = yaml.safe_load(response.content)
    return document


def component(schema: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][name]
    return found


def response_schema_name(operation: dict[str, Any], status: str) -> str:
    ref: str = operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def test_the_schema_generates_and_validates_without_warnings(tmp_path: Path) -> None:
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert yaml.safe_load(out.read_text())["openapi"].startswith("3.")


def test_every_spec_endpoint_is_documented(schema: dict[str, Any]) -> None:
    documented = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert documented >= SPEC_OPERATIONS


def test_both_api_auth_schemes_are_documented(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["jwtAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["ApiKeyAuth"]["in"] == "header"
    assert schemes["ApiKeyAuth"]["name"] == "X-API-Key"
    run = schema["paths"]["/api/v1/tests/{id}/run"]["post"]
    assert {"jwtAuth": []} in run["security"]
    assert {"ApiKeyAuth": []} in run["security"]


def test_every_operation_documents_the_error_envelope(schema: dict[str, Any]) -> None:
    error = component(schema, "Error")
    assert error["required"] == ["error"]
    assert set(component(schema, "ErrorDetail")["properties"]) == {"code", "message", "details", "request_id"}
    for path, method in SPEC_OPERATIONS:
        operation = schema["paths"][path][method]
        for status in ("400", "401", "403", "404", "429"):
            assert response_schema_name(operation, status) == "Error", (path, method, status)
    assert response_schema_name(schema["paths"]["/api/v1/executions/{id}/cancel"]["post"], "409") == "Error"
    assert response_schema_name(schema["paths"]["/api/v1/tests"]["post"], "413") == "Error"


def test_execution_and_result_shapes_are_the_specs(schema: dict[str, Any]) -> None:
    execution = schema["paths"]["/api/v1/executions/{id}"]["get"]
    assert list(component(schema, response_schema_name(execution, "200"))["properties"]) == EXECUTION_FIELDS
    run = schema["paths"]["/api/v1/tests/{id}/run"]["post"]
    assert "202" in run["responses"]
    assert response_schema_name(run, "202") == response_schema_name(execution, "200")
    results = schema["paths"]["/api/v1/tests/{id}/results"]["get"]
    page = component(schema, response_schema_name(results, "200"))
    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    row = page["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[-1]
    assert list(component(schema, row)["properties"]) == RESULT_FIELDS


def test_login_and_test_creation_shapes(schema: dict[str, Any]) -> None:
    login = schema["paths"]["/api/v1/auth/login"]["post"]
    pair = component(schema, response_schema_name(login, "200"))
    assert set(pair["properties"]) == {"access", "refresh", "token_type", "expires_in"}
    create = schema["paths"]["/api/v1/tests"]["post"]
    assert "201" in create["responses"]
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"prompt", "expected_output", "evaluation_type", "tags"} <= set(component(schema, body_ref)["properties"])
    listing = schema["paths"]["/api/v1/tests"]["get"]
    params = {parameter["name"] for parameter in listing["parameters"]}
    assert {
        "category",
        "difficulty",
        "status",
        "tag",
        "search",
        "created_by",
        "ordering",
        "page",
        "page_size",
    } <= params
    assert {"status", "test_case", "model"} <= {
        parameter["name"] for parameter in schema["paths"]["/api/v1/executions"]["get"]["parameters"]
    }


def test_model_config_is_write_only_in_the_schema(schema: dict[str, Any]) -> None:
    model = schema["paths"]["/api/v1/models/{id}"]["get"]
    assert "config" not in component(schema, response_schema_name(model, "200"))["properties"]


def test_swagger_ui_and_the_browsable_api_are_served() -> None:
    docs = Client().get("/docs")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    browsable = Client().get("/api/v1/models", HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200
    assert b"<html" in browsable.content.lower()
