"""A contributor's first visit in a real browser: register, log in, write a test (fixing an error), find it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from accounts.models import User
from catalog.models import TestCase

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-browser-passphrase"


def test_a_new_contributor_registers_writes_a_test_and_finds_it(live_server: Any, page: Any) -> None:
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Register").click()
    page.fill("#id_email", "ada@example.com")
    page.fill("#id_display_name", "Ada")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("Your account is ready.")).to_be_visible()
    assert User.objects.filter(email="ada@example.com").exists()

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("link", name="Log in").click()
    page.fill("#id_username", "ada@example.com")
    page.fill("#id_password", PASSWORD)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Ada")).to_be_visible()

    page.get_by_role("link", name="New test").first.click()
    page.fill("#id_title", "Capital of Peru")
    page.fill("#id_category", "geography")
    page.fill("#id_tags", "capitals, south-america")
    page.fill("#id_prompt", "What is the capital of Peru? Answer with one word.")
    page.select_option("#id_evaluation_type", "exact_match")
    page.fill("#id_output_schema", "{not json")  # a mistake, to be shown next to its field
    page.get_by_role("button", name="Submit for review").click()

    error = page.locator("#field-output_schema .errorlist")
    expect(error).to_contain_text("Enter valid JSON")
    expect(page.locator("#id_prompt")).to_have_value("What is the capital of Peru? Answer with one word.")
    assert not TestCase.objects.exists()

    page.fill("#id_output_schema", "")
    page.get_by_role("button", name="Submit for review").click()
    # The shape is fine now, but an exact match needs an expected output: the service says so, in place.
    expect(page.locator("#field-expected_output .errorlist")).to_contain_text("Exact match needs an expected output.")
    assert not TestCase.objects.exists()

    page.fill("#id_expected_output", "Lima")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_text("Test submitted.")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Pending")

    page.get_by_role("link", name="Tests", exact=True).click()
    page.fill("#id_search", "Peru")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("#tests tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Capital of Peru")
    expect(row).to_contain_text("Pending")
    test_case = TestCase.objects.get()
    assert test_case.created_by.email == "ada@example.com"
    assert test_case.expected_output == "Lima"
