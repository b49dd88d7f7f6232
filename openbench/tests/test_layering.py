"""The shape docs/architecture.md promises: imports run one way, and no module outside migrations and tests
passes 450 lines (issue 11). Read from the source files, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Lower rank = lower layer. catalog and providers sit side by side; catalog may use providers.
RANK = {
    "accounts": 0,
    "providers": 1,
    "catalog": 1,
    "evaluations": 2,
    "leaderboard": 3,
    # Wave 2 features built on the analytics; side by side, none imports another.
    "judging": 4,
    "monitoring": 4,
    "arena": 4,
}
ALSO_ALLOWED = {("catalog", "providers")}
MAX_LINES = 450


def _sources(app: str) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / app).rglob("*.py"))
        if "tests" not in path.parts and "migrations" not in path.parts and "testing" not in path.parts
    ]


def _imported_apps(path: Path) -> set[str]:
    apps = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        apps |= {name.split(".")[0] for name in names} & RANK.keys()
    return apps


def test_no_app_imports_a_higher_app_outside_its_pages() -> None:
    upward = []
    for app, rank in RANK.items():
        for path in _sources(app):
            if path.name == "views.py":  # pages may compose several apps
                continue
            for other in _imported_apps(path) - {app}:
                if RANK[other] >= rank and (app, other) not in ALSO_ALLOWED:
                    upward.append(f"{path.relative_to(ROOT)} imports {other}")
    assert upward == []


def test_no_module_outside_migrations_and_tests_passes_450_lines() -> None:
    long = []
    for folder in [*RANK, "openbench", "bench"]:
        for path in _sources(folder):
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES:
                long.append(f"{path.relative_to(ROOT)}: {lines}")
    assert long == []


def test_no_bench_script_is_named_like_an_app() -> None:
    # bench/throughput.py puts bench/ first on the import path: a bench/arena.py hid the arena app there.
    clashing = sorted(
        path.stem for path in (ROOT / "bench").glob("*.py") if path.stem in RANK or path.stem == "openbench"
    )
    assert clashing == []
