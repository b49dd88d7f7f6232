"""SPEC §10 Headers in a real browser: under our Content-Security-Policy every page, the Django admin,
Swagger UI and ReDoc load and work, and Chromium reports not one violation."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from catalog.models import LLMModel, TestCase
from evaluations import executor
from evaluations.models import Execution, TestResult
from evaluations.tests.factories import ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-demo-passphrase"

# Every violation fires this DOM event (also those Chromium does not print), before the page's own scripts.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
"""


class Watch:
    """Console errors, uncaught page errors and CSP violation events of one tab, from now on."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        self.errors: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def problems(self) -> list[str]:
        found = [line for line in self.console if "Content Security Policy" in line or "Refused to" in line]
        found += [f"pageerror: {error}" for error in self.errors]
        found += [f"violation: {v}" for v in self.page.evaluate("window.__cspViolations || []")]
        return found

    def visit(self, url: str) -> None:
        response = self.page.goto(url)
        assert response is not None and response.status == 200, url
        assert response.header_value("content-security-policy"), url


@pytest.fixture
def demo(live_server: Any, monkeypatch: pytest.MonkeyPatch, settings: Any) -> Any:
    """The demo catalog with its results (run by the in-process executor), so charts and tables have data."""
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    settings.USE_RQ = False
    call_command("seed_demo", "--with-results", verbosity=0, stdout=io.StringIO())
    executor.wait_idle()
    return live_server


def _log_in_through_the_admin(page: Any, base: str) -> None:
    page.goto(base + "/admin/")
    page.fill("#id_username", "moderator@openbench.local")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


def test_pages_and_the_admin_load_with_no_csp_violation(demo: Any, page: Any) -> None:
    watch = Watch(page)
    base = demo.url
    _log_in_through_the_admin(page, base)
    expect(page.get_by_role("link", name="Pending queue")).to_be_visible()

    model = LLMModel.objects.filter(results__isnull=False).distinct().first()
    assert model is not None
    test_case = TestCase.objects.filter(status="approved").first()
    assert test_case is not None
    two_models = LLMModel.objects.filter(results__isnull=False).distinct()[:2]
    compare = "&".join(f"models={m.pk}" for m in two_models)
    pages = [
        "/",
        "/tests/",
        f"/tests/{test_case.pk}/",
        "/models/",
        f"/models/{model.pk}/",
        "/leaderboard/",
        f"/compare/?{compare}",
        "/executions/",
        "/suites/",
        "/suites/new/",
        "/monitoring/schedules/",
        "/monitoring/alerts/",
        "/judges/",
        "/arena/",
        "/arena/ratings/",
        "/admin/catalog/pendingtestcase/",
        f"/admin/catalog/testcase/{test_case.pk}/change/",
    ]
    for path in pages:
        watch.visit(base + path)
        expect(page.locator("body")).to_be_visible()
        assert watch.problems() == [], (path, watch.problems())

    # The charts drew their legend (SVG swatches, not style="" attributes the policy would refuse).
    watch.visit(f"{base}/compare/?{compare}")
    expect(page.locator("svg.chart").first).to_be_visible()


def test_the_confirm_before_archiving_still_asks_under_the_policy(demo: Any, page: Any) -> None:
    # The confirmation moved from an inline onsubmit="" (refused by the CSP) to static/js/confirm.js.
    watch = Watch(page)
    _log_in_through_the_admin(page, demo.url)
    test_case = TestCase.objects.filter(status="approved").first()
    assert test_case is not None
    watch.visit(f"{demo.url}/tests/{test_case.pk}/")
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.get_by_role("button", name="Archive").click()
    page.wait_for_timeout(300)
    assert asked == ["Archive this test? Its results are kept."]
    test_case.refresh_from_db()
    assert test_case.status == "approved"  # dismissed: nothing was sent
    assert watch.problems() == []


def test_an_execution_page_draws_its_progress_bar_without_inline_styles(demo: Any, page: Any) -> None:
    watch = Watch(page)
    _log_in_through_the_admin(page, demo.url)
    finished = Execution.objects.filter(status="completed").first()
    assert finished is not None
    watch.visit(f"{demo.url}/executions/{finished.pk}/")
    track = page.locator("#execution-progress .progress").bounding_box()
    bar = page.locator("#execution-progress .bar").bounding_box()
    assert track and bar and abs(bar["width"] - track["width"]) <= 2  # 100 %, from the nonce'd rule

    half = ExecutionFactory(
        test_case=finished.test_case, created_by=finished.created_by, total_evaluations=4, progress=2
    )
    half.llm_models.add(TestResult.objects.filter(execution=finished).first().model)  # type: ignore[union-attr]
    watch.visit(f"{demo.url}/executions/{half.pk}/")
    track = page.locator("#execution-progress .progress").bounding_box()
    bar = page.locator("#execution-progress .bar").bounding_box()
    assert track and bar and abs(bar["width"] - track["width"] / 2) <= 3
    assert watch.problems() == []


def test_swagger_ui_and_redoc_work_from_our_own_files_with_no_csp_violation(demo: Any, page: Any) -> None:
    watch = Watch(page)
    outside: list[str] = []
    ours = (demo.url, "blob:" + demo.url, "data:")  # ReDoc's search worker is a blob: of this page
    page.on("request", lambda request: None if request.url.startswith(ours) else outside.append(request.url))

    watch.visit(demo.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("OpenBench API", timeout=30_000)
    page.locator(".opblock-tag", has_text="models").first.click()
    expect(page.locator(".opblock").first).to_be_visible()
    assert watch.problems() == [], watch.problems()

    watch.visit(demo.url + "/redoc")
    expect(page.locator("#redoc-container h1").first).to_contain_text("OpenBench API", timeout=30_000)
    # ReDoc's search runs in a worker it builds from a blob: URL; typing drives it.
    search = page.locator("input[placeholder^='Search']")
    search.fill("models")
    page.wait_for_timeout(500)
    assert watch.problems() == []
    assert outside == [], "no request may leave for a CDN or a font host"


def test_the_browsable_api_loads_with_no_csp_violation(demo: Any, page: Any) -> None:
    watch = Watch(page)
    _log_in_through_the_admin(page, demo.url)
    watch.visit(demo.url + "/api/v1/models")
    expect(page.locator(".response-info")).to_be_visible()
    assert watch.problems() == [], watch.problems()
