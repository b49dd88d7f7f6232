"""The `custom` config check reaches the scorers only through the hook evaluations registers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from catalog import validation
from catalog.validation import evaluation_config_errors, register_scorer_config_validator
from evaluations.apps import custom_scorer_config_errors


@pytest.fixture
def restore_hook():  # type: ignore[no-untyped-def]
    installed = validation._scorer_config_validator
    yield
    register_scorer_config_validator(installed)


def test_evaluations_registers_the_scorer_check_when_the_app_is_ready() -> None:
    assert validation._scorer_config_validator is custom_scorer_config_errors
    assert evaluation_config_errors("custom", {"scorer": "regex", "pattern": "a+"}) == []
    assert "Unknown scorer 'telepathy'" in evaluation_config_errors("custom", {"scorer": "telepathy"})[0]


def test_without_a_registered_check_a_custom_config_is_refused(restore_hook) -> None:  # type: ignore[no-untyped-def]
    register_scorer_config_validator(None)
    errors = evaluation_config_errors("custom", {"scorer": "regex", "pattern": "a+"})
    assert errors == ["Custom scorers are unavailable: no scorer registry is installed to check this config."]
    # The other evaluation types need no scorer and are checked as before.
    assert evaluation_config_errors("exact_match", {"case_sensitive": True}) == []


def test_the_hook_gets_the_scorer_name_and_the_options_without_it(restore_hook) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[str, dict[str, object]]] = []

    def check(name: str, options: dict[str, object]) -> list[str]:
        seen.append((name, options))
        return ["nope"]

    register_scorer_config_validator(check)
    assert evaluation_config_errors("custom", {"scorer": "numeric", "abs_tolerance": 0.1}) == ["nope"]
    assert seen == [("numeric", {"abs_tolerance": 0.1})]
    # The shape of the config is checked first: without a scorer name the hook is not asked.
    assert evaluation_config_errors("custom", {}) == ["'scorer' is a required property"]
    assert len(seen) == 1


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_catalog_imports_no_higher_app_outside_its_pages() -> None:
    # Pages (views.py) may compose several apps; models, services, the API and validation may not reach up.
    root = Path(validation.__file__).parent
    allowed = {root / "views.py", root / "management" / "commands" / "seed_demo.py"}
    upward = {
        f"{path.relative_to(root)}: {name}"
        for path in root.rglob("*.py")
        if path not in allowed and "tests" not in path.parts and "migrations" not in path.parts
        for name in _imported_modules(path)
        if name.split(".")[0] in ("evaluations", "leaderboard")
    }
    assert upward == set()


def test_a_regex_scorer_pattern_is_checked_with_the_regex_package_that_will_run_it() -> None:
    # \p{L} is valid for the `regex` package the scorer matches with, unknown to the stdlib `re`.
    assert evaluation_config_errors("custom", {"scorer": "regex", "pattern": r"^\p{L}+$"}) == []
    errors = evaluation_config_errors("custom", {"scorer": "regex", "pattern": "(unclosed"})
    assert errors and "pattern" in errors[0]
