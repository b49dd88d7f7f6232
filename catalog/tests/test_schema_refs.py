"""SPEC §10, "no fetch from user content", at submission: an output schema may only reference itself.

A `$ref`/`$dynamicRef` that is not `#...`, or a `$id` naming an absolute URI, is refused with 400 naming
`output_schema` on the API (POST and PATCH), the pages (create and edit) and import_tests; so is a pattern
the `regex` package (which scoring matches patterns with) cannot compile. A local HTTP server counts
requests: submitting never reaches it.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from catalog.models import TestCase
from catalog.tests.factories import TestCaseFactory
from catalog.validation import output_schema_errors, schema_safety_errors
from openbench.tests.api import V1, assert_error, client_for, reset_throttles  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db


class CountingServer:
    """127.0.0.1:<port>, answering every GET with a JSON Schema, and counting the requests it got."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = json.dumps({"type": "string", "const": "fetched-document"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/schema+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def remote() -> Iterator[CountingServer]:
    server = CountingServer()
    yield server
    server.close()


def remote_schemas(url: str) -> dict[str, Any]:
    """Schemas that would make a careless validator open a URL or a file."""
    return {
        "http_ref": {"type": "object", "properties": {"city": {"$ref": f"{url}/x.json"}}},
        "file_ref": {"$ref": "file:///etc/passwd"},
        "relative_ref": {"properties": {"city": {"$ref": "x.json#/a"}}},
        "network_path_ref": {"$ref": "//127.0.0.1/x.json"},
        "dynamic_ref": {"$dynamicRef": f"{url}/x.json"},
        "remote_id": {"$id": f"{url}/", "$defs": {"a": {"type": "string"}}, "$ref": "#/$defs/a"},
        "nested_remote_id": {"$defs": {"a": {"$id": "file:///etc/", "type": "string"}}},
        "ref_hidden_in_an_unknown_keyword": {"x-stash": {"$ref": f"{url}/x.json"}, "$ref": "#/x-stash"},
        "ref_in_an_array": {"anyOf": [{"type": "null"}, {"$ref": f"{url}/x.json"}]},
    }


def structured_payload(schema: Any) -> dict[str, Any]:
    return {
        "title": "City as JSON",
        "category": "geography",
        "difficulty": "easy",
        "prompt": 'Answer {"city": ...} for the capital of Italy.',
        "expected_output": {"city": "Rome"},
        "evaluation_type": "structured_match",
        "evaluation_config": {},
        "output_schema": schema,
        "timeout_seconds": 30,
    }


LOCAL_SCHEMA = {
    "$defs": {"name": {"type": "string", "pattern": r"^\p{Lu}\p{Ll}+$"}},
    "type": "object",
    "properties": {"city": {"$ref": "#/$defs/name"}, "alias": {"$dynamicRef": "#/$defs/name"}},
    "patternProperties": {"^x-": {"type": "string"}},
    "required": ["city"],
}


# -- the rule itself -------------------------------------------------------------------------------------
def test_every_schema_that_reaches_outside_itself_is_refused_with_the_place(remote):
    for name, schema in remote_schemas(remote.url).items():
        errors = output_schema_errors(schema)
        assert errors, name
        assert all(len(error) <= 300 for error in errors)
    assert output_schema_errors({"properties": {"city": {"$ref": "file:///etc/passwd"}}}) == [
        "$ref at /properties/city must start with '#': only references inside the schema are allowed "
        "(nothing is fetched)."
    ]
    assert output_schema_errors({"$id": "https://example.com/person.schema.json"}) == [
        "$id at / must not be an absolute URI; remove it."
    ]
    assert remote.hits == []


def test_references_inside_the_schema_and_regex_syntax_are_accepted():
    assert output_schema_errors(LOCAL_SCHEMA) == []
    assert output_schema_errors({"$id": "city", "$anchor": "c", "$ref": "#c"}) == []  # a relative $id names no host
    assert output_schema_errors(True) == []
    # A property *named* $ref or $id holds a schema, not a reference.
    assert output_schema_errors({"properties": {"$ref": {"type": "string"}, "$id": {"type": "integer"}}}) == []


def test_patterns_are_checked_with_the_regex_package_that_scoring_runs_them_with():
    # `[[:foo:]]` is a plain set to `re` but an unknown POSIX class to `regex`; `\p{Lu}` the other way round.
    assert output_schema_errors({"properties": {"a": {"type": "string", "pattern": "[[:foo:]]"}}}) == [
        "Not a valid JSON Schema: '[[:foo:]]' is not a 'regex' (at properties/a/pattern)"
    ]
    assert output_schema_errors({"patternProperties": {"[[:foo:]]": {}}})
    assert output_schema_errors({"propertyNames": {"pattern": "(a"}})
    assert output_schema_errors({"properties": {"a": {"pattern": r"^\p{Lu}$"}}}) == []
    # A pattern where check_schema does not look (a `$ref` can still lead there) is checked by the walk.
    assert output_schema_errors({"x-stash": {"pattern": "[[:foo:]]"}, "$ref": "#/x-stash"}) == [
        "The pattern at /x-stash/pattern is not a valid regular expression (at position 8)."
    ]
    assert schema_safety_errors({"x-stash": {"patternProperties": {"(": {}}}}) == [
        "The pattern at /x-stash/patternProperties is not a valid regular expression (at position 1)."
    ]


def test_the_walk_reports_a_bounded_number_of_problems():
    schema = {"anyOf": [{"$ref": f"http://h/{i}"} for i in range(50)]}
    assert len(schema_safety_errors(schema)) == 10


# -- the API ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(remote_schemas("http://127.0.0.1:1")))
def test_the_api_refuses_a_schema_that_reaches_outside_itself(owner, remote, name):
    schema = remote_schemas(remote.url)[name]
    error = assert_error(client_for(owner).post(f"{V1}/tests", structured_payload(schema), format="json"), 400)
    assert list(error["details"]) == ["output_schema"], error
    assert not TestCase.objects.exists()
    assert remote.hits == []


def test_the_api_accepts_local_references(owner):
    response = client_for(owner).post(f"{V1}/tests", structured_payload(LOCAL_SCHEMA), format="json")
    assert response.status_code == 201, response.content
    assert TestCase.objects.get().output_schema == LOCAL_SCHEMA


def test_a_patch_with_a_remote_reference_is_refused_and_changes_nothing(owner, remote):
    test_case = TestCaseFactory(
        created_by=owner, evaluation_type="structured_match", expected_output={"city": "Rome"}, output_schema=None
    )
    payload = {"output_schema": {"$ref": f"{remote.url}/x.json"}}
    error = assert_error(client_for(owner).patch(f"{V1}/tests/{test_case.pk}", payload, format="json"), 400)
    assert "output_schema" in error["details"]
    payload = {"output_schema": {"properties": {"city": {"pattern": "[[:foo:]]"}}}}
    error = assert_error(client_for(owner).patch(f"{V1}/tests/{test_case.pk}", payload, format="json"), 400)
    assert "is not a 'regex'" in error["details"]["output_schema"][0]
    test_case.refresh_from_db()
    assert test_case.output_schema is None
    assert test_case.revision == 1
    assert remote.hits == []


# -- the pages --------------------------------------------------------------------------------------------
def form_data(schema: Any) -> dict[str, str]:
    payload = structured_payload(schema)
    return {
        **{key: str(value) for key, value in payload.items() if key not in ("expected_output", "output_schema")},
        "expected_output": json.dumps(payload["expected_output"]),
        "output_schema": json.dumps(schema),
        "evaluation_config": "{}",
        "language": "en",
        "tags": "",
        "is_public": "on",
    }


def test_the_create_and_edit_pages_show_the_refusal_on_the_schema_field(client, owner, remote):
    client.force_login(owner)
    response = client.post(reverse("catalog:test-create"), form_data({"$ref": f"{remote.url}/x.json"}))
    assert response.status_code == 400
    assert any("must start with '#'" in error for error in response.context["form"].errors["output_schema"])
    assert not TestCase.objects.exists()

    test_case = TestCaseFactory(
        created_by=owner, evaluation_type="structured_match", expected_output={"city": "Rome"}, output_schema=None
    )
    edit = reverse("catalog:test-edit", args=[test_case.pk])
    response = client.post(edit, {**form_data({"$id": f"{remote.url}/"}), "title": test_case.title})
    assert response.status_code == 400
    assert any("absolute URI" in error for error in response.context["form"].errors["output_schema"])
    test_case.refresh_from_db()
    assert test_case.output_schema is None
    assert remote.hits == []
    # The same form with a local reference is saved.
    response = client.post(edit, {**form_data(LOCAL_SCHEMA), "title": test_case.title})
    assert response.status_code == 302
    test_case.refresh_from_db()
    assert test_case.output_schema == LOCAL_SCHEMA


# -- import_tests -----------------------------------------------------------------------------------------
def test_import_tests_rejects_the_line_naming_output_schema(tmp_path, owner, remote):
    lines = [
        structured_payload({"$ref": f"{remote.url}/x.json"}),
        structured_payload({"$ref": "file:///etc/passwd"}),
        structured_payload(LOCAL_SCHEMA),
    ]
    path = tmp_path / "tests.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit):
        call_command("import_tests", str(path), author=owner.email, stdout=out, stderr=err)
    assert "Imported 1 test(s); 2 line(s) rejected." in out.getvalue()
    assert "line 1: output_schema" in err.getvalue()
    assert "line 2: output_schema" in err.getvalue()
    assert TestCase.objects.get().output_schema == LOCAL_SCHEMA
    assert remote.hits == []
