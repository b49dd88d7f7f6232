"""The analytics endpoints: numbers checked against scipy/numpy, filters, visibility, errors, caching."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from scipy import stats as sp

from catalog.models import LLMModel, TestCase
from catalog.tests.factories import LLMModelFactory
from evaluations.models import TestResult
from leaderboard import selectors
from leaderboard.tests.conftest import new_test, record

pytestmark = pytest.mark.django_db

LEADERBOARD = "/api/v1/leaderboard"
COMPARE = "/api/v1/analytics/compare"
TRENDS = "/api/v1/analytics/trends"


def performance_url(model):
    return f"/api/v1/models/{model.pk}/performance"


def entry_for(body, model):
    return next(e for e in body["entries"] if e["model"]["id"] == str(model.pk))


@pytest.fixture
def two_models_four_tests():
    strong = LLMModelFactory(name="strong", display_name="Strong", provider=LLMModel.Provider.OPENAI)
    weak = LLMModelFactory(name="weak", display_name="Weak", provider=LLMModel.Provider.ANTHROPIC)
    tests = [new_test(category="math" if i < 2 else "code", difficulty="easy" if i % 2 else "hard") for i in range(4)]
    for test in tests:
        record(strong, test, score=1.0, latency_ms=100, cost="0.002", tokens=30)
    record(weak, tests[0], score=1.0, latency_ms=300)
    record(weak, tests[1], score=0.0, latency_ms=500)
    record(weak, tests[2], status=TestResult.Status.FAILED, latency_ms=None)
    record(weak, tests[3], score=0.0, latency_ms=700, days_ago=20)
    return strong, weak, tests


# --- leaderboard ------------------------------------------------------------------------------


def test_anonymous_users_read_the_leaderboard_with_wilson_intervals(anonymous, two_models_four_tests):
    strong, _, _ = two_models_four_tests
    response = anonymous.get(LEADERBOARD)
    assert response.status_code == 200
    body = response.json()
    assert [e["model"]["name"] for e in body["entries"]] == ["strong", "weak"]
    top, bottom = body["entries"]
    assert top["model"] == {"id": str(strong.pk), "name": "strong", "display_name": "Strong", "provider": "openai"}
    wilson = sp.binomtest(1, 4).proportion_ci(method="wilson")
    assert bottom["score"] == 0.25
    assert bottom["ci_low"] == pytest.approx(wilson.low, abs=1e-6)
    assert bottom["ci_high"] == pytest.approx(wilson.high, abs=1e-6)
    assert bottom["tests_evaluated"] == 4
    assert bottom["pass_rate"] == 0.25
    assert bottom["error_rate"] == 0.25
    assert bottom["avg_latency_ms"] == 500.0  # the failed call's latency does not count
    assert bottom["p95_latency_ms"] == pytest.approx(np.percentile([300, 500, 700], 95), rel=0.09)
    assert top["total_tokens"] == 120
    assert top["total_cost"] == pytest.approx(0.008)
    assert top["cost_per_test"] == pytest.approx(0.002)
    assert (top["rank"], bottom["rank"]) == (1, 2)
    # [0.51, 1] and [0.05, 0.70] overlap, so either could be first.
    assert (top["rank_upper"], top["rank_lower"], bottom["rank_upper"], bottom["rank_lower"]) == (1, 2, 1, 2)


def test_leaderboard_uses_a_reproducible_bootstrap_for_partial_scores(anonymous):
    model = LLMModelFactory()
    scores = [0.5, 0.25, 1.0, 0.75, 0.0, 0.5]
    for score in scores:
        record(model, new_test(), score=score)
    entry = anonymous.get(LEADERBOARD).json()["entries"][0]
    reference = sp.bootstrap(
        (np.array(scores),), np.mean, method="percentile", n_resamples=20_000, rng=np.random.default_rng(0)
    ).confidence_interval
    assert entry["score"] == pytest.approx(np.mean(scores))
    assert entry["ci_low"] == pytest.approx(reference.low, abs=0.05)
    assert entry["ci_high"] == pytest.approx(reference.high, abs=0.05)
    from django.core.cache import cache

    cache.clear()
    again = anonymous.get(LEADERBOARD).json()["entries"][0]
    assert (again["ci_low"], again["ci_high"]) == (entry["ci_low"], entry["ci_high"])


def test_rank_ranges_separate_models_whose_intervals_do_not_overlap(anonymous):
    best, worst = LLMModelFactory(), LLMModelFactory()
    for _ in range(30):
        test = new_test()
        record(best, test, score=1.0)
        record(worst, test, score=0.0)
    entries = anonymous.get(LEADERBOARD).json()["entries"]
    assert [(e["rank"], e["rank_upper"], e["rank_lower"]) for e in entries] == [(1, 1, 1), (2, 2, 2)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=math", {"strong": (2, 1.0), "weak": (2, 0.5)}),
        ("difficulty=hard", {"strong": (2, 1.0), "weak": (2, 0.5)}),
        ("provider=anthropic", {"weak": (4, 0.25)}),
        ("timeframe=7d", {"strong": (4, 1.0), "weak": (3, 1 / 3)}),
        ("min_tests=4&timeframe=7d", {"strong": (4, 1.0)}),
        ("category=unknown", {}),
    ],
)
def test_leaderboard_filters(anonymous, two_models_four_tests, query, expected):
    body = anonymous.get(f"{LEADERBOARD}?{query}").json()
    got = {e["model"]["name"]: (e["tests_evaluated"], e["score"]) for e in body["entries"]}
    assert got == {name: (n, pytest.approx(score)) for name, (n, score) in expected.items()}


def test_private_and_pending_tests_never_reach_the_numbers(client_for, owner, moderator):
    model = LLMModelFactory()
    record(model, new_test(), score=1.0)
    record(model, new_test(is_public=False, created_by=owner), score=0.0)
    record(model, new_test(status=TestCase.Status.PENDING, created_by=owner), score=0.0)
    for user in (None, owner, moderator):
        entry = client_for(user).get(LEADERBOARD).json()["entries"][0]
        assert (entry["tests_evaluated"], entry["score"]) == (1, 1.0)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("timeframe=1y", "timeframe"),
        ("min_tests=-1", "min_tests"),
        ("min_tests=many", "min_tests"),
        ("difficulty=impossible", "difficulty"),
        ("provider=acme", "provider"),
        ("category=Not a slug!", "category"),
    ],
)
def test_bad_leaderboard_parameters_get_a_400_envelope_naming_the_field(anonymous, query, field):
    response = anonymous.get(f"{LEADERBOARD}?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["details"]
    assert error["message"].startswith(field)


# --- compare ----------------------------------------------------------------------------------


def test_compare_restricts_to_shared_tests_and_runs_mcnemar_on_binary_scores(anonymous):
    a, b, c = LLMModelFactory(name="a"), LLMModelFactory(name="b"), LLMModelFactory(name="c")
    a_scores = [1, 1, 1, 1, 1, 1, 0, 1, 0, 1]
    b_scores = [0, 0, 1, 0, 0, 1, 0, 1, 1, 0]
    tests = [new_test(category="math" if i % 2 else "code") for i in range(10)]
    for test, sa, sb in zip(tests, a_scores, b_scores, strict=True):
        record(a, test, score=sa)
        record(b, test, score=sb)
        record(c, test, score=1)
    record(a, new_test(), score=1)  # not shared: ignored
    response = anonymous.get(f"{COMPARE}?model_ids={a.pk},{b.pk}&model_ids={c.pk}")
    assert response.status_code == 200
    body = response.json()
    assert [m["name"] for m in body["models"]] == ["a", "b", "c"]
    assert [s["tests"] for s in body["summary"]] == [10, 10, 10]
    assert body["summary"][0]["score"] == pytest.approx(0.8)
    pair = body["pairwise"][0]
    assert (pair["model_a"]["name"], pair["model_b"]["name"]) == ("a", "b")
    assert (pair["shared_tests"], pair["a_wins"], pair["b_wins"], pair["ties"]) == (10, 5, 1, 4)
    assert pair["method"] == "mcnemar_exact"
    assert pair["p_value"] == pytest.approx(sp.binomtest(1, 6, 0.5).pvalue, rel=1e-6)
    assert len(body["pairwise"]) == 3
    math = next(row for row in body["by_category"] if row["category"] == "math")
    assert math["tests"] == 5
    assert math["scores"][str(c.pk)] == 1.0
    assert body["tests_total"] == 10
    assert {t["test_id"] for t in body["tests"]} == {str(t.pk) for t in tests}
    spreads = [max(t["scores"].values()) - min(t["scores"].values()) for t in body["tests"]]
    assert spreads == sorted(spreads, reverse=True)  # the largest disagreement first
    assert spreads[0] == 1.0


def test_compare_uses_wilcoxon_when_scores_are_partial(anonymous):
    a, b = LLMModelFactory(), LLMModelFactory()
    a_scores = [0.9, 0.8, 0.75, 0.6, 0.3, 0.95, 0.5]
    b_scores = [0.5, 0.7, 0.1, 0.65, 0.2, 0.4, 0.5]
    for sa, sb in zip(a_scores, b_scores, strict=True):
        test = new_test()
        record(a, test, score=sa)
        record(b, test, score=sb)
    pair = anonymous.get(f"{COMPARE}?model_ids={a.pk},{b.pk}").json()["pairwise"][0]
    assert pair["method"] == "wilcoxon_exact"
    assert pair["p_value"] == pytest.approx(sp.wilcoxon(a_scores, b_scores, method="exact").pvalue, rel=1e-6)
    assert (pair["a_wins"], pair["b_wins"], pair["ties"]) == (5, 1, 1)


def test_compare_applies_every_filter_to_every_compared_model(anonymous):
    a = LLMModelFactory(name="a", provider=LLMModel.Provider.OPENAI)
    b = LLMModelFactory(name="b", provider=LLMModel.Provider.OPENAI)
    other = LLMModelFactory(name="other", provider=LLMModel.Provider.ANTHROPIC)
    recent_math_hard = new_test(category="math", difficulty="hard")
    recent_code_easy = new_test(category="code", difficulty="easy")
    old_for_b = new_test(category="math", difficulty="hard")
    for test in (recent_math_hard, recent_code_easy):
        for model in (a, b, other):
            record(model, test, score=1.0)
    record(a, old_for_b, score=1.0)
    record(b, old_for_b, score=0.0, days_ago=40)  # outside 30d for b only: the test is not shared then
    record(other, old_for_b, score=1.0)

    def shared(query, models=(a, b)):
        ids = ",".join(str(m.pk) for m in models)
        body = anonymous.get(f"{COMPARE}?model_ids={ids}&{query}").json()
        return {t["test_id"] for t in body["tests"]}, body["tests_total"]

    assert shared("") == ({str(t.pk) for t in (recent_math_hard, recent_code_easy, old_for_b)}, 3)
    assert shared("timeframe=30d") == ({str(recent_math_hard.pk), str(recent_code_easy.pk)}, 2)
    assert shared("timeframe=90d") == ({str(t.pk) for t in (recent_math_hard, recent_code_easy, old_for_b)}, 3)
    assert shared("category=math") == ({str(recent_math_hard.pk), str(old_for_b.pk)}, 2)
    assert shared("category=math&timeframe=30d") == ({str(recent_math_hard.pk)}, 1)
    assert shared("difficulty=easy") == ({str(recent_code_easy.pk)}, 1)
    assert shared("", models=(a, b, other))[1] == 3
    # The API takes no provider for compare (the models are named); pages pass scopes that may hold one.
    assert selectors.compare(models=[a, b], scope=selectors.Scope(provider="openai"))["tests_total"] == 3
    assert selectors.compare(models=[a, other], scope=selectors.Scope(provider="openai"))["tests_total"] == 0


@pytest.mark.parametrize("count", [1, 6])
def test_compare_needs_two_to_five_models(anonymous, count):
    ids = ",".join(str(LLMModelFactory().pk) for _ in range(count))
    response = anonymous.get(f"{COMPARE}?model_ids={ids}")
    assert response.status_code == 400
    assert "between 2 and 5" in response.json()["error"]["message"]


def test_compare_rejects_unknown_and_malformed_model_ids(anonymous):
    known = LLMModelFactory()
    unknown = uuid.uuid4()
    response = anonymous.get(f"{COMPARE}?model_ids={known.pk},{unknown}")
    assert response.status_code == 400
    assert str(unknown) in response.json()["error"]["message"]
    response = anonymous.get(f"{COMPARE}?model_ids={known.pk},nope")
    assert response.status_code == 400
    assert "not a model id" in response.json()["error"]["message"]
    assert anonymous.get(COMPARE).status_code == 400


# --- trends -----------------------------------------------------------------------------------


def test_trends_give_a_point_per_bucket_with_n_and_leave_empty_buckets_out(anonymous):
    model = LLMModelFactory()
    record(model, new_test(), score=1.0, days_ago=0, cost="0.004")
    record(model, new_test(), score=0.0, days_ago=0, cost="0.002")
    record(model, new_test(), score=0.5, days_ago=3, latency_ms=400)
    body = anonymous.get(f"{TRENDS}?metric=score&interval=day").json()
    assert body["metric"] == "score"
    points = body["series"][0]["points"]
    assert [(p["value"], p["n"]) for p in points] == [(0.5, 1), (0.5, 2)]
    assert len(points) == 2  # the two empty days in between are absent
    cost = anonymous.get(f"{TRENDS}?metric=cost&model_ids={model.pk}").json()["series"][0]["points"]
    assert cost[-1]["value"] == pytest.approx(0.003)
    latency = anonymous.get(f"{TRENDS}?metric=latency").json()["series"][0]["points"]
    assert latency[0] == {"t": points[0]["t"], "value": 400.0, "n": 1}


def test_weekly_trends_start_on_mondays(anonymous):
    model = LLMModelFactory()
    for days_ago in range(15):
        record(model, new_test(), score=1.0, days_ago=days_ago)
    points = anonymous.get(f"{TRENDS}?interval=week&metric=pass_rate").json()["series"][0]["points"]
    import datetime

    assert all(datetime.date.fromisoformat(p["t"]).weekday() == 0 for p in points)
    assert sum(p["n"] for p in points) == 15


@pytest.mark.parametrize("query", ["metric=speed", "interval=month", "timeframe=2d", "model_ids=zzz"])
def test_bad_trend_parameters_get_a_400(anonymous, query):
    response = anonymous.get(f"{TRENDS}?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert query.split("=")[0] in error["details"]


# --- model performance ------------------------------------------------------------------------


def test_model_performance_reports_exact_percentiles_and_breakdowns(anonymous):
    model = LLMModelFactory()
    latencies = [120, 340, 90, 2000, 515, 60]
    for i, latency in enumerate(latencies):
        record(
            model,
            new_test(category="math" if i < 3 else "code", difficulty="hard" if i % 2 else "easy"),
            score=1.0 if i % 3 else 0.0,
            latency_ms=latency,
            days_ago=i // 2,
        )
    record(model, new_test(category="code"), status=TestResult.Status.TIMEOUT, latency_ms=60_000)
    body = anonymous.get(performance_url(model)).json()
    overall = body["overall"]
    assert overall["tests"] == 7
    assert overall["error_rate"] == pytest.approx(1 / 7, abs=1e-6)
    for q in (50, 95, 99):
        assert overall[f"latency_p{q}_ms"] == pytest.approx(np.percentile(latencies, q), abs=0.05)
    assert {row["category"]: row["tests"] for row in body["by_category"]} == {"code": 4, "math": 3}
    assert {row["difficulty"] for row in body["by_difficulty"]} == {"easy", "hard"}
    assert sum(day["tests"] for day in body["history"]) == 7
    math_only = anonymous.get(f"{performance_url(model)}?category=math").json()
    assert math_only["overall"]["tests"] == 3


def test_model_performance_breakdowns_match_numbers_computed_from_the_rows(anonymous):
    from leaderboard import stats

    model = LLMModelFactory()
    rows = [  # category, difficulty, score, latency (None: a failed call), days ago, cost
        ("math", "easy", 0.5, 100, 0, "0.010"),
        ("math", "hard", 0.25, 100, 0, "0.020"),
        ("math", "hard", 1.0, 300, 1, "0.030"),
        ("code", "easy", 0.0, 700, 1, "0.040"),
        ("code", "medium", 0.75, 100, 2, "0.050"),
        ("code", "medium", None, None, 40, "0"),
    ]
    for category, difficulty, score, latency, days_ago, cost in rows:
        test = new_test(category=category, difficulty=difficulty)
        if score is None:
            record(model, test, status=TestResult.Status.FAILED, latency_ms=latency, days_ago=days_ago, cost=cost)
        else:
            record(model, test, score=score, latency_ms=latency, days_ago=days_ago, cost=cost)
    body = anonymous.get(performance_url(model)).json()
    scores = np.array([r[2] or 0.0 for r in rows])
    ok_latencies = [r[3] for r in rows if r[3] is not None]

    overall = body["overall"]
    assert overall["score"] == pytest.approx(scores.mean(), abs=1e-6)
    assert overall["avg_latency_ms"] == pytest.approx(np.mean(ok_latencies), abs=0.05)
    assert overall["latency_p50_ms"] == pytest.approx(np.percentile(ok_latencies, 50), abs=0.05)  # ties
    assert overall["total_cost"] == pytest.approx(0.15, abs=1e-8)
    assert overall["cost_per_test"] == pytest.approx(0.15 / 6, abs=1e-8)
    low, high, method = stats.score_interval(
        np.bincount(np.rint(scores * 100).astype(int), minlength=stats.SCORE_BINS),
        zeros=int((scores == 0).sum()),
        ones=int((scores == 1).sum()),
        n=len(scores),
        mean=scores.mean(),
    )
    assert method == "bootstrap"
    assert (overall["ci_low"], overall["ci_high"]) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))

    code = next(row for row in body["by_category"] if row["category"] == "code")
    assert code["tests"] == 3
    assert code["score"] == pytest.approx(0.75 / 3, abs=1e-6)
    assert code["error_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert code["avg_latency_ms"] == pytest.approx(400, abs=0.05)
    assert [row["difficulty"] for row in body["by_difficulty"]] == ["easy", "hard", "medium"]
    assert next(row for row in body["by_difficulty"] if row["difficulty"] == "hard")["pass_rate"] == 0.5
    history = body["history"]
    assert [day["date"] for day in history] == sorted(day["date"] for day in history)
    assert [day["tests"] for day in history] == [1, 1, 2, 2]
    assert history[-1]["total_cost"] == pytest.approx(0.03, abs=1e-8)
    assert "total_cost" not in body["by_category"][0]

    hard = anonymous.get(f"{performance_url(model)}?difficulty=hard").json()
    assert hard["filters"]["difficulty"] == "hard"
    assert [row["difficulty"] for row in hard["by_difficulty"]] == ["hard"]
    assert hard["overall"]["score"] == pytest.approx(0.625, abs=1e-6)
    assert anonymous.get(f"{performance_url(model)}?difficulty=impossible").status_code == 400
    recent = anonymous.get(f"{performance_url(model)}?timeframe=30d").json()
    assert recent["overall"]["tests"] == 5
    assert recent["overall"]["error_rate"] == 0.0


def test_model_performance_of_an_unknown_model_is_404(anonymous):
    response = anonymous.get(f"/api/v1/models/{uuid.uuid4()}/performance")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_model_performance_rejects_a_bad_timeframe(anonymous):
    model = LLMModelFactory()
    response = anonymous.get(f"{performance_url(model)}?timeframe=forever")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "timeframe" in error["details"]


def test_a_model_without_results_has_an_empty_performance(anonymous):
    body = anonymous.get(performance_url(LLMModelFactory())).json()
    assert body["overall"]["tests"] == 0
    assert body["overall"]["latency_p95_ms"] is None
    assert body["history"] == []


# --- caching ----------------------------------------------------------------------------------


def test_cached_answers_are_refreshed_when_results_land(anonymous, django_assert_max_num_queries):
    model, test = LLMModelFactory(), new_test()
    record(model, test, score=0.0)
    assert anonymous.get(LEADERBOARD).json()["entries"][0]["score"] == 0.0
    with django_assert_max_num_queries(0):
        anonymous.get(LEADERBOARD)
    record(model, test, score=1.0)
    assert anonymous.get(LEADERBOARD).json()["entries"][0]["score"] == 1.0


def test_results_of_other_models_leave_a_cached_comparison_alone(anonymous, django_assert_num_queries):
    a, b, other = LLMModelFactory(), LLMModelFactory(), LLMModelFactory()
    test = new_test()
    for model in (a, b):
        record(model, test)
    url = f"{COMPARE}?model_ids={a.pk},{b.pk}"
    anonymous.get(url)
    record(other, test)
    with django_assert_num_queries(1):  # the model lookup only; the answer comes from the cache
        anonymous.get(url)
    record(a, test, score=0.0)
    assert anonymous.get(url).json()["summary"][0]["score"] == 0.0


def test_renaming_a_model_refreshes_cached_answers(anonymous, django_capture_on_commit_callbacks):
    model = LLMModelFactory(display_name="Old name")
    record(model, new_test())
    anonymous.get(LEADERBOARD)
    model.display_name = "New name"
    with django_capture_on_commit_callbacks(execute=True):
        model.save()
    assert anonymous.get(LEADERBOARD).json()["entries"][0]["model"]["display_name"] == "New name"


def test_the_analytics_endpoints_are_in_the_openapi_schema(anonymous):
    schema = anonymous.get("/api/schema?format=json").json()
    for path in (
        "/api/v1/leaderboard",
        "/api/v1/analytics/compare",
        "/api/v1/analytics/trends",
        "/api/v1/models/{id}/performance",
    ):
        assert "200" in schema["paths"][path]["get"]["responses"]
    params = {p["name"] for p in schema["paths"]["/api/v1/leaderboard"]["get"]["parameters"]}
    assert {"category", "difficulty", "provider", "timeframe", "min_tests"} <= params


def _conforms(serializer_class, body):
    serializer = serializer_class(data=body)
    assert serializer.is_valid(), serializer.errors
    assert set(body) == set(serializer.fields)


def test_every_answer_has_exactly_the_documented_shape(anonymous, two_models_four_tests):
    from leaderboard.api import serializers as s

    strong, weak, _ = two_models_four_tests
    body = anonymous.get(LEADERBOARD).json()
    _conforms(s.LeaderboardSerializer, body)
    assert set(body["entries"][0]) == set(s.LeaderboardEntrySerializer().fields)
    body = anonymous.get(f"{COMPARE}?model_ids={strong.pk},{weak.pk}").json()
    _conforms(s.CompareSerializer, body)
    assert set(body["pairwise"][0]) == set(s.PairwiseSerializer().fields)
    body = anonymous.get(f"{TRENDS}?metric=latency&interval=week").json()
    _conforms(s.TrendsSerializer, body)
    body = anonymous.get(performance_url(weak)).json()
    _conforms(s.ModelPerformanceSerializer, body)
    assert set(body["overall"]) == set(s.OverallSerializer().fields)


def test_the_analytics_schema_generates_without_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator(patterns=None).get_schema(request=None, public=True)
    mine = [w for w in GENERATOR_STATS._warn_cache if "leaderboard" in str(w)]
    assert mine == []


# --- intervals memo ----------------------------------------------------------------------------


def test_bootstrap_intervals_survive_an_emptied_cache_without_being_recomputed(anonymous, monkeypatch):
    from django.core.cache import cache

    from leaderboard import stats
    from leaderboard.models import IntervalMemo

    model = LLMModelFactory()
    for score in (0.2, 0.5, 0.9, 1.0, 0.0, 0.7):
        record(model, new_test(), score=score)
    first = entry_for(anonymous.get(LEADERBOARD).json(), model)
    assert IntervalMemo.objects.count() == 1

    def no_bootstrap(*args, **kwargs):
        raise AssertionError("the interval was bootstrapped again")

    cache.clear()
    monkeypatch.setattr(stats, "bootstrap_mean_interval", no_bootstrap)
    again = entry_for(anonymous.get(LEADERBOARD).json(), model)
    assert (again["ci_low"], again["ci_high"]) == (first["ci_low"], first["ci_high"])

    # New scores are a new sample: bootstrapped, never served from the memo.
    record(model, new_test(), score=0.4)
    with pytest.raises(AssertionError, match="bootstrapped again"):
        anonymous.get(LEADERBOARD)


def test_old_memoised_intervals_are_pruned_when_new_ones_are_stored(anonymous):
    import datetime

    from django.utils import timezone

    from leaderboard.models import IntervalMemo

    IntervalMemo.objects.create(
        key="stale", low=0.1, high=0.2, computed_at=timezone.now() - datetime.timedelta(days=31)
    )
    IntervalMemo.objects.create(
        key="recent", low=0.1, high=0.2, computed_at=timezone.now() - datetime.timedelta(days=1)
    )
    model = LLMModelFactory()
    for score in (0.3, 0.6):
        record(model, new_test(), score=score)
    anonymous.get(LEADERBOARD)
    assert set(IntervalMemo.objects.values_list("key", flat=True)) - {"recent"} != set()
    assert not IntervalMemo.objects.filter(key="stale").exists()
    assert IntervalMemo.objects.filter(key="recent").exists()
