"""Importing tests (SPEC §14): every format through the service, the import_tests command and
POST /api/v1/tests/import; bad records by line, bad files refused whole, nothing left behind."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from catalog.interchange.importing import test_cases_import
from catalog.models import ModerationEvent, Tag, TestCase, TestCaseRevision
from openbench.exceptions import ApplicationError

pytestmark = pytest.mark.django_db

URL = "/api/v1/tests/import"


def jsonl(*records: object) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def run_import(data: bytes, fmt: str, author, **options):
    return test_cases_import(stream=io.BytesIO(data), fmt=fmt, author=author, **options)


def nothing_created() -> bool:
    return not (TestCase.objects.exists() or TestCaseRevision.objects.exists() or ModerationEvent.objects.exists())


NATIVE = {
    "title": "Capital",
    "category": "geo",
    "prompt": "Capital of France?",
    "expected_output": "Paris",
    "evaluation_type": "exact_match",
    "tags": ["capitals", "europe"],
}


# -- jsonl / csv (our own fields) ----------------------------------------------------------------------
def test_jsonl_creates_tests_with_their_tags_revision_and_audit_event(owner):
    report = run_import(jsonl(NATIVE, {**NATIVE, "title": "Second", "tags": ["capitals"]}), "jsonl", owner)
    assert (report.created, report.failed, report.errors) == (2, 0, [])
    test_case = TestCase.objects.get(title="Capital")
    assert test_case.status == TestCase.Status.PENDING
    assert test_case.created_by == owner
    assert sorted(test_case.tags.values_list("name", flat=True)) == ["capitals", "europe"]
    assert test_case.revisions.get().prompt == "Capital of France?"
    assert test_case.moderation_events.get().action == ModerationEvent.Action.SUBMIT
    assert Tag.objects.filter(name="capitals").count() == 1


def test_bad_lines_are_reported_by_line_and_field_and_leave_nothing(owner):
    data = jsonl(
        NATIVE,
        {**NATIVE, "title": "Bad", "evaluation_config": {"nope": 1}, "tags": ["only-bad"]},
        {**NATIVE, "title": "Unknown", "colour": "red"},
        {**NATIVE, "title": "", "timeout_seconds": 999},
        "{not json",
    )
    report = run_import(data, "jsonl", owner)
    assert (report.created, report.failed) == (1, 4)
    where = {(error.line, error.field) for error in report.errors}
    assert {(2, "evaluation_config"), (3, "colour"), (4, "title"), (4, "timeout_seconds"), (5, None)} <= where
    assert list(TestCase.objects.values_list("title", flat=True)) == ["Capital"]
    assert not Tag.objects.filter(name="only-bad").exists()


def test_csv_reads_json_cells_and_refuses_unknown_columns_whole(owner):
    good = "title,category,prompt,expected_output,evaluation_type,evaluation_config,tags\n"
    good += 'Sum,math,2+2?,4,custom,"{""scorer"": ""numeric""}",math;easy\n'
    report = run_import(good.encode(), "csv", owner)
    assert report.created == 1
    test_case = TestCase.objects.get()
    assert (test_case.expected_output, test_case.evaluation_config) == (4, {"scorer": "numeric"})
    with pytest.raises(ApplicationError, match="unknown columns: 'colour'"):
        run_import(b"title,prompt,colour\nA,B,C\n", "csv", owner)


def test_dry_run_validates_and_creates_nothing(owner):
    report = run_import(jsonl(NATIVE, {**NATIVE, "evaluation_type": "nope"}), "jsonl", owner, dry_run=True)
    assert (report.created, report.failed, report.dry_run) == (1, 1, True)
    assert report.errors[0].field == "evaluation_type"
    assert nothing_created()


def test_records_are_created_in_chunks(owner, django_assert_max_num_queries):
    records = [{**NATIVE, "title": f"T{i}"} for i in range(25)]
    run_import(jsonl(*records[:1]), "jsonl", owner)  # warm the tag rows and caches
    with django_assert_max_num_queries(30):
        report = run_import(jsonl(*records), "jsonl", owner, chunk_size=10)
    assert report.created == 25


@pytest.mark.parametrize(
    ("data", "fmt", "field", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "jsonl", "file", "not UTF-8"),
        (b"just some text\n", "jsonl", "file", "Line 1 is not JSON"),
        (b"[1, 2]\n", "jsonl", "file", "not a JSON object"),
        (jsonl(NATIVE), "xml", "format", "Unknown format"),
        (b"", "jsonl", "file", "no records"),
    ],
)
def test_a_file_that_is_not_its_format_is_refused_whole(owner, data, fmt, field, message):
    with pytest.raises(ApplicationError, match=message) as caught:
        run_import(data, fmt, owner)
    assert field in caught.value.details
    assert nothing_created()


def test_a_late_whole_file_error_still_creates_nothing(owner):
    # 600 good records (more than a chunk), then a line that is not UTF-8: the file is not CSV text.
    rows = "".join(f"T{i},geo,P{i},x,exact_match\n" for i in range(600))
    data = ("title,category,prompt,expected_output,evaluation_type\n" + rows).encode() + b"Bad,geo,\xff\xfe,x,y\n"
    with pytest.raises(ApplicationError, match="Line 602 is not UTF-8"):
        run_import(data, "csv", owner)
    assert nothing_created()


def test_more_records_than_allowed_is_refused_whole(owner):
    with pytest.raises(ApplicationError, match="more than 2 records"):
        run_import(jsonl(NATIVE, NATIVE, NATIVE), "jsonl", owner, max_records=2)
    assert nothing_created()


def test_approve_goes_through_the_moderators_path(moderator, owner):
    report = run_import(jsonl(NATIVE), "jsonl", moderator, approve=True)
    assert report.created == 1
    test_case = TestCase.objects.get()
    assert test_case.status == TestCase.Status.APPROVED
    assert test_case.moderated_by == moderator
    assert [e.action for e in test_case.moderation_events.order_by("created_at")] == ["submit", "approve"]
    with pytest.raises(ApplicationError, match="Only moderators"):
        run_import(jsonl(NATIVE), "jsonl", owner, approve=True)


# -- inspect -------------------------------------------------------------------------------------------
def test_inspect_string_and_chat_inputs_targets_and_choices(owner):
    data = jsonl(
        {"id": "q1", "input": "What is 2+2?", "target": "4", "metadata": {"category": "math", "source": "gsm"}},
        {
            "input": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Name a primary colour."}]},
            ],
            "target": ["red", "blue", "yellow"],
        },
        {"id": "mc", "input": "Largest planet?", "choices": ["Mars", "Jupiter", "Venus"], "target": "B"},
        {"id": "mc2", "input": "Smallest?", "choices": ["Mercury", "Earth"], "target": "Mercury"},
        {"id": "bad", "input": "?", "choices": ["a", "b"], "target": "Z"},
        {"id": "image", "input": [{"role": "user", "content": [{"type": "image", "image": "x.png"}]}], "target": "x"},
        {"id": "no target", "input": "?"},
    )
    report = run_import(data, "inspect", owner)
    assert (report.created, report.failed) == (4, 3)
    assert {(e.line, e.field) for e in report.errors} == {(5, "target"), (6, "input[0].content"), (7, "target")}
    q1 = TestCase.objects.get(title="q1")
    assert (q1.prompt, q1.expected_output, q1.evaluation_type, q1.category) == (
        "What is 2+2?",
        "4",
        "exact_match",
        "math",
    )
    assert json.loads(q1.description.split(": ", 1)[1]) == {"source": "gsm"}
    colour = TestCase.objects.get(prompt="Name a primary colour.")
    assert colour.system_prompt == "Be brief."
    assert colour.evaluation_config == {"scorer": "contains", "values": ["red", "blue", "yellow"], "mode": "any"}
    mc = TestCase.objects.get(title="mc")
    assert "A) Mars\nB) Jupiter\nC) Venus" in mc.prompt
    assert (mc.expected_output, TestCase.objects.get(title="mc2").expected_output) == ("B", "A")


def test_inspect_csv(owner):
    data = b'id,input,target,choices\nc1,Pick one,A,"[""x"", ""y""]"\nc2,Say hi,hi,\n'
    report = run_import(data, "inspect", owner)
    assert report.created == 2
    assert TestCase.objects.get(title="c1").prompt.startswith("Pick one\n\nA) x\nB) y")


# -- promptfoo -----------------------------------------------------------------------------------------
PROMPTFOO = """\
prompts:
  - "Translate to French: {{ text }}"
tests:
  - description: Hello
    vars: {text: Hello}
    assert:
      - type: equals
        value: Bonjour
  - vars: {text: cat}
    assert:
      - type: icontains
        value: chat
  - vars: {text: Give JSON}
    assert:
      - type: is-json
        value: {type: object, required: [a]}
  - vars: {text: dog}
    assert:
      - type: regex
        value: "^chien"
  - vars: {text: poem}
    assert:
      - type: llm-rubric
        value: Is a poem about {{ text }}
  - vars: {text: x}
    assert:
      - type: javascript
        value: output.length > 1
  - vars: {other: x}
    assert:
      - type: contains
        value: x
  - vars: {text: two}
    assert:
      - {type: contains, value: a}
      - {type: contains, value: b}
"""


def test_promptfoo_maps_assertions_and_reports_others_by_test_and_line(owner):
    report = run_import(PROMPTFOO.encode(), "promptfoo", owner)
    assert (report.created, report.failed) == (6, 2)
    errors = {(e.index, e.line, e.field) for e in report.errors}
    assert errors == {(6, 25, "assert[0].type"), (7, 29, "vars.text")}
    hello = TestCase.objects.get(title="Hello")
    assert (hello.prompt, hello.expected_output, hello.evaluation_type) == (
        "Translate to French: Hello",
        "Bonjour",
        "exact_match",
    )
    assert hello.evaluation_config == {"case_sensitive": True}
    by_prompt = {t.prompt.rsplit(": ", 1)[1]: t for t in TestCase.objects.all()}
    assert by_prompt["cat"].evaluation_config == {"scorer": "contains", "case_sensitive": False}
    assert by_prompt["Give JSON"].evaluation_type == "structured_match"
    assert by_prompt["Give JSON"].output_schema == {"type": "object", "required": ["a"]}
    assert by_prompt["dog"].evaluation_config == {"scorer": "regex", "pattern": "^chien"}
    assert by_prompt["poem"].evaluation_config == {"rubric": "Is a poem about poem"}
    assert by_prompt["two"].evaluation_config["values"] == ["a", "b"]


def test_promptfoo_template_from_the_request_and_whole_file_errors(owner):
    tests = "- vars: {q: hi}\n  assert: [{type: equals, value: hello}]\n"
    report = run_import(tests.encode(), "promptfoo", owner, prompt_template="Say {{q}}")
    assert TestCase.objects.get().prompt == "Say hi" and report.created == 1
    with pytest.raises(ApplicationError, match="No prompt template") as caught:
        run_import(tests.encode(), "promptfoo", owner)
    assert "prompt_template" in caught.value.details
    with pytest.raises(ApplicationError, match=r"YAML syntax error at line 3, column 1") as caught:
        run_import(b"tests:\n  - vars: {q: [unclosed\n", "promptfoo", owner, prompt_template="{{q}}")
    assert "file" in caught.value.details
    bomb = b"a: &a [x, x]\nb: &b [*a, *a]\ntests:\n  - vars: {q: *b}\n"
    with pytest.raises(ApplicationError, match="aliases"):
        run_import(bomb, "promptfoo", owner, prompt_template="{{q}}")
    with pytest.raises(ApplicationError, match="only"):
        run_import(tests.encode(), "promptfoo", owner, prompt_template="{{ q | upper }}")
    assert TestCase.objects.count() == 1


def test_promptfoo_text_filled_in_from_vars_is_capped_per_file(owner, settings):
    # A 1,000-character defaultTest var used twice by each of 60 tests: a 1.2 KB file, 120,000 characters of
    # prompts. With IMPORT_MAX_BYTES at 10,000 the file may produce 100,000: refused whole, nothing created.
    settings.IMPORT_MAX_BYTES = 10_000
    big = "x" * 1000
    tests = "".join("- assert: [{type: equals, value: a}]\n" for _ in range(60))
    data = f"defaultTest: {{vars: {{big: {big}}}}}\ntests:\n{tests}".replace("- assert", "  - assert").encode()
    with pytest.raises(ApplicationError, match="more than 100000 characters") as caught:
        run_import(data, "promptfoo", owner, prompt_template="{{big}} {{ big }}")
    assert "file" in caught.value.details and nothing_created()
    # The same file with one use of the var (60,000 characters) is within the cap.
    assert run_import(data, "promptfoo", owner, prompt_template="{{big}}").created == 60


def test_promptfoo_vars_that_are_not_a_mapping_refuse_their_test_only(owner):
    tests = (
        "- vars: [q, hi]\n  assert: [{type: equals, value: a}]\n- vars: {q: hi}\n  assert: [{type: equals, value: a}]\n"
    )
    report = run_import(tests.encode(), "promptfoo", owner, prompt_template="Say {{q}}")
    assert (report.created, report.failed) == (1, 1)
    assert [(e.index, e.line, e.field) for e in report.errors] == [(1, 1, "vars")]
    default = "defaultTest: {vars: text}\ntests:\n  - vars: {q: hi}\n    assert: [{type: equals, value: a}]\n"
    report = run_import(default.encode(), "promptfoo", owner, prompt_template="Say {{q}}")
    assert (report.created, report.failed) == (0, 1) and report.errors[0].field == "defaultTest.vars"


# -- hf --------------------------------------------------------------------------------------------------
def test_hf_jsonl_with_a_column_map(owner):
    data = jsonl(
        {"question": "2+2?", "answer": "4", "subject": "math"},
        {"question": "Colours?", "answer": ["red", "blue"], "subject": "art"},
        {"question": "", "answer": "x", "subject": "art"},
    )
    report = run_import(
        data, "hf", owner, column_map={"prompt": "question", "expected": "answer", "category": "subject"}
    )
    assert (report.created, report.failed) == (2, 1)
    assert report.errors[0].line == 3 and report.errors[0].field == "question"
    math = TestCase.objects.get(category="math")
    assert (math.prompt, math.expected_output, math.evaluation_type) == ("2+2?", "4", "exact_match")
    with pytest.raises(ApplicationError, match="expected=response") as caught:
        run_import(data, "hf", owner, column_map={"prompt": "question", "expected": "response"})
    assert "map" in caught.value.details


def test_hf_parquet_read_by_batches(owner):
    table = pa.table({"q": [f"Q{i}" for i in range(2500)], "a": [str(i) for i in range(2500)], "extra": [1] * 2500})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=1000)
    report = run_import(buffer.getvalue(), "hf", owner, column_map={"prompt": "q", "expected": "a"})
    assert report.created == 2500
    assert TestCase.objects.get(prompt="Q2499").expected_output == "2499"
    with pytest.raises(ApplicationError, match="not a readable Parquet") as caught:
        run_import(b"PAR1garbage", "hf", owner, column_map={"prompt": "q", "expected": "a"})
    assert "file" in caught.value.details
    with pytest.raises(ApplicationError, match="needs expected") as caught:
        run_import(buffer.getvalue(), "hf", owner, column_map={"prompt": "q"})


def parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def test_hf_parquet_text_is_capped_before_it_is_decompressed_or_decoded(owner, settings):
    # IMPORT_MAX_BYTES at 10,000: the mapped columns may hold 100,000 bytes of text once read.
    settings.IMPORT_MAX_BYTES = 10_000
    answers = {"prompt": "q", "expected": "a"}
    # One 200,000-character prompt compresses to a few hundred bytes: refused from the pages' sizes.
    compressed = parquet(pa.table({"q": ["x" * 200_000], "a": ["y"]}))
    assert len(compressed) < 2_000
    with pytest.raises(ApplicationError, match="Decompressed, the mapped columns hold more than 100000") as caught:
        run_import(compressed, "hf", owner, column_map=answers)
    assert "file" in caught.value.details and nothing_created()
    # 300 rows of one dictionary-encoded 1,000-character string (a 1 KB page, 300,000 characters once
    # decoded), also inside lists and objects: refused from the decoded size of the first batch.
    for column in (["z" * 1000] * 300, [["z" * 1000]] * 300, [{"k": "z" * 1000}] * 300):
        encoded = parquet(pa.table({"q": ["Q"] * 300, "a": column}))
        with pytest.raises(ApplicationError, match="Row 1: the mapped columns hold more than 100000") as caught:
            run_import(encoded, "hf", owner, column_map=answers)
        assert "file" in caught.value.details and nothing_created()
    # Within the limit, dictionary-encoded texts, lists and objects read as before.
    table = pa.table({"q": [f"Q{i}" for i in range(10)], "lists": [["red", "blue"]] * 10, "objects": [{"k": "v"}] * 10})
    for expected in ("lists", "objects"):
        assert run_import(parquet(table), "hf", owner, column_map={"prompt": "q", "expected": expected}).created == 10
    assert {tuple(t.evaluation_config.get("values", ())) for t in TestCase.objects.filter(prompt="Q0")} == {
        ("red", "blue"),
        (),
    }
    assert TestCase.objects.filter(prompt="Q9", expected_output={"k": "v"}).count() == 1


# -- the command ---------------------------------------------------------------------------------------
def test_command_dry_run_and_exit_code(tmp_path, owner):
    path = tmp_path / "tests.jsonl"
    path.write_bytes(jsonl(NATIVE, {**NATIVE, "evaluation_type": "nope"}))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("import_tests", str(path), author=owner.email, dry_run=True, stdout=out, stderr=err)
    assert exited.value.code == 1
    assert "Would import 1 test(s); 1 line(s) rejected." in out.getvalue()
    assert "line 2: evaluation_type" in err.getvalue()
    assert nothing_created()


def test_command_hf_map_and_whole_file_error(tmp_path, owner):
    from django.core.management.base import CommandError

    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl({"q": "Hi?", "a": "Hello"}))
    call_command(
        "import_tests", str(path), author=owner.email, format="hf", map="prompt=q,expected=a", stdout=io.StringIO()
    )
    assert TestCase.objects.get().prompt == "Hi?"
    with pytest.raises(CommandError, match=r"map: .*expected=b"):
        call_command("import_tests", str(path), author=owner.email, format="hf", map="prompt=q,expected=b")


# -- the API ---------------------------------------------------------------------------------------------
def upload(client, data: bytes, name: str = "tests.jsonl", **fields):
    return client.post(URL, {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


def test_api_imports_for_moderators_and_answers_the_report(client_for, moderator):
    response = upload(client_for(moderator), jsonl(NATIVE, {**NATIVE, "evaluation_type": "nope"}), format="jsonl")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] == 1 and body["failed"] == 1 and body["dry_run"] is False
    assert body["errors"] == [{"line": 2, "field": "evaluation_type", "message": body["errors"][0]["message"]}]
    assert body["errors_truncated"] is False


def test_api_refuses_users_and_anonymous(client_for, owner, anonymous):
    assert upload(client_for(owner), jsonl(NATIVE), format="jsonl").status_code == 403
    assert upload(anonymous, jsonl(NATIVE), format="jsonl").status_code in (401, 403)
    assert nothing_created()


def test_api_whole_request_errors_are_400_naming_the_field(client_for, moderator):
    client = client_for(moderator)
    response = upload(client, jsonl(NATIVE), format="xml")
    assert response.status_code == 400 and "format" in response.json()["error"]["details"]
    response = upload(client, b"tests: [unclosed\n", name="t.yaml", format="promptfoo", prompt_template="{{x}}")
    assert response.status_code == 400 and "line 2" in response.json()["error"]["message"]
    response = upload(client, jsonl({"q": "x", "a": "y"}), format="hf", map="prompt=q,expected=missing")
    assert response.status_code == 400 and "map" in response.json()["error"]["details"]
    response = upload(client, jsonl(NATIVE), format="hf", map="prompt=q,nonsense=x")
    assert response.status_code == 400 and "map" in response.json()["error"]["details"]
    assert client.post(URL, {"format": "jsonl"}, format="multipart").status_code == 400
    assert nothing_created()


def test_api_dry_run(client_for, moderator):
    response = upload(client_for(moderator), jsonl(NATIVE), format="jsonl", dry_run="true")
    assert response.json()["created"] == 1 and response.json()["dry_run"] is True
    assert nothing_created()


def test_api_limits_the_upload_size_and_record_count(client_for, moderator, settings):
    settings.IMPORT_MAX_BYTES = 2000
    settings.IMPORT_MAX_RECORDS = 3
    client = client_for(moderator)
    big = jsonl(*[{**NATIVE, "description": "x" * 500}] * 5)
    assert upload(client, big, format="jsonl").status_code == 413
    response = upload(client, jsonl(*[NATIVE] * 4), format="jsonl")
    assert response.status_code == 400 and "more than 3 records" in response.json()["error"]["message"]
    assert upload(client, jsonl(*[NATIVE] * 3), format="jsonl").json()["created"] == 3


def test_api_approve(client_for, moderator):
    response = upload(client_for(moderator), jsonl(NATIVE), format="jsonl", approve="true")
    assert response.json()["created"] == 1
    assert TestCase.objects.get().status == TestCase.Status.APPROVED


def test_a_record_the_database_refuses_does_not_sink_its_chunk(owner, monkeypatch):
    # What validation cannot know (e.g. a concurrent change) surfaces as a database error at insert: the
    # chunk is retried one record at a time, and only the refused record is reported.
    from django.db import IntegrityError

    from catalog.interchange import importing

    real_insert = importing._insert

    def insert(chunk, **kwargs):
        if any(item.test_case.title == "Refused" for item in chunk):
            real_insert(chunk, **kwargs)  # the rows are written, then the database refuses the chunk
            raise IntegrityError("refused")
        return real_insert(chunk, **kwargs)

    monkeypatch.setattr(importing, "_insert", insert)
    data = jsonl(NATIVE, {**NATIVE, "title": "Refused"}, {**NATIVE, "title": "Third"})
    report = run_import(data, "jsonl", owner, chunk_size=10)
    assert (report.created, report.failed) == (2, 1)
    assert report.errors[0].line == 2 and "database refused" in report.errors[0].message
    assert sorted(TestCase.objects.values_list("title", flat=True)) == ["Capital", "Third"]
    assert TestCaseRevision.objects.count() == 2


def test_api_reads_parquet_and_promptfoo_uploads(client_for, moderator):
    client = client_for(moderator)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"q": ["Hi?", "Bye?"], "a": ["Hello", "Goodbye"]}), buffer)
    response = upload(client, buffer.getvalue(), name="data.parquet", format="hf", map="prompt=q,expected=a")
    assert response.status_code == 200 and response.json()["created"] == 2, response.content
    response = upload(client, PROMPTFOO.encode(), name="tests.yaml", format="promptfoo")
    body = response.json()
    assert (body["created"], body["failed"]) == (6, 2)
    assert {"line": 25, "index": 6, "field": "assert[0].type"}.items() <= body["errors"][0].items()


def test_with_debug_on_the_query_log_does_not_grow_with_the_file(owner, settings):
    # DEBUG keeps every query's SQL (up to 9,000); a chunk's INSERT is large, so an import clears the log.
    from django.db import connection

    settings.DEBUG = True
    connection.queries_log.clear()
    report = run_import(jsonl(*[{**NATIVE, "title": f"T{i}"} for i in range(60)]), "jsonl", owner, chunk_size=5)
    assert report.created == 60
    assert len(connection.queries) <= 10
