"""SPEC §10 "Search": any number of words is one filter whose cost does not grow with the words or the tags.

The attack: a long search on `/tests/` or `GET /api/v1/tests?search=` used to join the tags once per
word, so the database multiplied rows (tags ** words) before DISTINCT folded them again. Now every word
is an OR over the text fields and an EXISTS on the tags, the words are bounded, and the SQL has no join
on tags at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from catalog.models import SEARCH_MAX_LENGTH, SEARCH_MAX_WORDS, TestCase
from catalog.services import test_case_create
from catalog.tests.factories import TestCaseFactory
from openbench.tests.api import (
    V1,
    assert_error,
    ids,
    reset_throttles,  # noqa: F401 - autouse fixture
)

pytestmark = pytest.mark.django_db

TAGS_PER_TEST = 12
# 30 words, each found in the target test: most in its tags, some in its title, prompt or category.
TAG_WORDS = [f"topic{n:02d}" for n in range(TAGS_PER_TEST)]
TEXT_WORDS = ["volcano", "magma", "basalt", "geology", "eruption", "caldera"]
WORDS = [*TAG_WORDS, *TEXT_WORDS, *(word[:5] for word in TAG_WORDS)]


def _approved(author: Any, **fields: Any) -> TestCase:
    test_case = test_case_create(author=author, evaluation_type="exact_match", expected_output="x", **fields)
    TestCase.objects.filter(pk=test_case.pk).update(status=TestCase.Status.APPROVED)
    return test_case


@pytest.fixture
def catalog(owner: Any) -> dict[str, TestCase]:
    """A target that matches all 30 words, a near miss that lacks one, and many tagged bystanders."""
    target = _approved(
        owner,
        title="Volcano magma basalt",
        prompt="Which geology term names an eruption that leaves a caldera?",
        category="earth-science",
        tags=TAG_WORDS,
    )
    near_miss = _approved(
        owner,
        title="Volcano magma basalt",
        prompt="Which geology term names an eruption?",  # no "caldera"
        category="earth-science",
        tags=TAG_WORDS,
    )
    for n in range(5):
        _approved(owner, title=f"Bystander {n}", prompt="Unrelated", category="misc", tags=TAG_WORDS[: n + 3])
    return {"target": target, "near_miss": near_miss}


def _search_queries(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if "LIKE" in query["sql"].upper()]


def test_a_30_word_search_is_one_bounded_filter_without_a_tag_join(
    anonymous: APIClient, catalog: dict[str, TestCase]
) -> None:
    assert len(WORDS) == 30 and len(" ".join(WORDS)) <= SEARCH_MAX_LENGTH
    with CaptureQueriesContext(connection) as one_word:
        assert anonymous.get(f"{V1}/tests", {"search": WORDS[0]}).status_code == 200
    with CaptureQueriesContext(connection) as thirty_words:
        response = anonymous.get(f"{V1}/tests", {"search": " ".join(WORDS)})

    assert response.status_code == 200
    body = response.json()
    assert ids(response) == {str(catalog["target"].pk)}
    assert body["count"] == len(body["results"]) == 1  # no duplicate rows, and the count agrees
    # As many queries as for one word: the words change the WHERE clause, not the number of queries.
    assert len(thirty_words.captured_queries) == len(one_word.captured_queries)
    searched = _search_queries(thirty_words)
    assert searched, "the search ran no LIKE at all"
    for sql in searched:
        assert "JOIN" not in sql.upper(), sql  # the tags are an EXISTS per word, never joined
        assert "DISTINCT" not in sql.upper(), sql
        assert sql.upper().count("EXISTS") == len(WORDS)


def test_the_page_uses_the_same_filter(client: Client, catalog: dict[str, TestCase]) -> None:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("catalog:test-list"), {"search": " ".join(WORDS)})

    assert response.status_code == 200
    assert [test.pk for test in response.context["page"].object_list] == [catalog["target"].pk]
    searched = _search_queries(captured)
    assert searched
    for sql in searched:  # the page joins the author (select_related), never the tags
        assert 'JOIN "TEST_CASES_TAGS"' not in sql.upper() and 'JOIN "TAGS"' not in sql.upper(), sql


def test_a_word_found_only_in_a_tag_or_only_in_a_field_matches(anonymous: APIClient, owner: Any) -> None:
    tagged = _approved(owner, title="Plain", prompt="Nothing here", category="misc", tags=["tectonics"])
    titled = _approved(owner, title="Tectonics primer", prompt="Plates", category="misc", tags=["other"])
    _approved(owner, title="Else", prompt="Else", category="misc", tags=["unrelated"])

    assert ids(anonymous.get(f"{V1}/tests", {"search": "TECTON"})) == {str(tagged.pk), str(titled.pk)}
    assert ids(anonymous.get(f"{V1}/tests", {"search": "tectonics plates"})) == {str(titled.pk)}


def test_a_search_still_sees_only_what_the_caller_may_see(anonymous: APIClient, owner: Any) -> None:
    TestCaseFactory(title="Hidden volcano", status=TestCase.Status.PENDING, created_by=owner)
    assert ids(anonymous.get(f"{V1}/tests", {"search": "volcano"})) == set()


@pytest.mark.parametrize(
    "search",
    [
        " ".join(["word"] * (SEARCH_MAX_WORDS + 1)),
        "x" * (SEARCH_MAX_LENGTH + 1),
    ],
    ids=["too-many-words", "too-long"],
)
def test_a_search_past_the_bounds_is_a_400_naming_search(anonymous: APIClient, search: str) -> None:
    error = assert_error(anonymous.get(f"{V1}/tests", {"search": search}), 400, "validation_error")
    assert set(error["details"]) == {"search"}


def test_the_page_shows_the_refusal_and_no_tests(client: Client, catalog: dict[str, TestCase]) -> None:
    response = client.get(reverse("catalog:test-list"), {"search": " ".join(["word"] * (SEARCH_MAX_WORDS + 1))})

    assert response.status_code == 200
    assert f"at most {SEARCH_MAX_WORDS} words" in response.content.decode()
    assert response.context["page"].paginator.count == 0
