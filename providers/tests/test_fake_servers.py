"""The fake vendor servers other apps' tests and the benchmark rely on: faults, counters, process mode."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx
import pytest

from providers.testing.fake_servers import FakeServer

CHAT = "/v1/chat/completions"


def _ask(client: httpx.Client, prompt: str) -> httpx.Response:
    return client.post(CHAT, json={"model": "m", "messages": [{"role": "user", "content": prompt}]})


def test_it_answers_from_the_mapping_and_echoes_other_prompts():
    with FakeServer("openai", answers={"2+2?": "4", "obj": {"a": 1}}, default_answer=None) as server:
        client = httpx.Client(base_url=server.base_url.removesuffix("/v1"))
        answers = [_ask(client, prompt).json()["choices"][0]["message"]["content"] for prompt in ("2+2?", "obj", "hi")]

    assert answers == ["4", '{"a": 1}', "hi"]
    assert server.request_count == 3


def test_an_answer_function_can_answer_per_model():
    def answer(model: str, prompt: str) -> str | None:
        return "Paris" if model == "good" else None

    with FakeServer("openai", answer_fn=answer, default_answer="Lyon") as server:
        client = httpx.Client(base_url=server.url)
        texts = [
            client.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "Capital?"}]}).json()
            for model in ("good", "bad")
        ]

    assert [text["choices"][0]["message"]["content"] for text in texts] == ["Paris", "Lyon"]


def test_a_default_answer_replaces_the_echo():
    with FakeServer("openai", default_answer="wrong") as server:
        response = _ask(httpx.Client(base_url=server.url), "anything")

    assert response.json()["choices"][0]["message"]["content"] == "wrong"


def test_a_script_plays_faults_in_order_then_answers_normally():
    with FakeServer("openai", script=["rate_limit", "server_error", "unauthorized", "bad_request"]) as server:
        client = httpx.Client(base_url=server.url)
        responses = [_ask(client, "q") for _ in range(5)]

    assert [response.status_code for response in responses] == [429, 500, 401, 400, 200]
    assert responses[0].headers["retry-after"] == "1"
    assert server.outcomes == {"rate_limit": 1, "server_error": 1, "unauthorized": 1, "bad_request": 1, "ok": 1}


def test_malformed_answers_are_not_json():
    with FakeServer("openai", script=["malformed"]) as server:
        response = _ask(httpx.Client(base_url=server.url), "q")

    assert response.status_code == 200
    with pytest.raises(ValueError, match=r"\w"):
        response.json()


def test_a_hang_never_answers_until_the_client_gives_up():
    with FakeServer("openai", script=["hang"]) as server:
        client = httpx.Client(base_url=server.url, timeout=0.3)
        with pytest.raises(httpx.ReadTimeout):
            _ask(client, "q")
        assert _ask(httpx.Client(base_url=server.url), "next").status_code == 200


def test_fault_rates_apply_to_the_given_share_of_requests():
    with FakeServer("openai", fault_rates={"rate_limit": 0.3, "server_error": 0.2}, seed=7) as server:
        client = httpx.Client(base_url=server.url)
        statuses = [_ask(client, "q").status_code for _ in range(400)]

    assert 0.2 < statuses.count(429) / 400 < 0.4
    assert 0.12 < statuses.count(500) / 400 < 0.28
    assert statuses.count(200) + statuses.count(429) + statuses.count(500) == 400


def test_unknown_faults_and_impossible_rates_are_refused():
    with pytest.raises(ValueError, match="Unknown faults"):
        FakeServer("openai", script=["explode"])
    with pytest.raises(ValueError, match="add up"):
        FakeServer("openai", fault_rates={"rate_limit": 0.7, "hang": 0.5})
    with pytest.raises(ValueError, match="Unknown vendor"):
        FakeServer("cohere")


def test_a_required_key_is_checked():
    with FakeServer("openai", api_key="right") as server:
        wrong = httpx.post(f"{server.url}{CHAT}", json={"messages": []}, headers={"Authorization": "Bearer nope"})
        right = httpx.post(
            f"{server.url}{CHAT}",
            json={"messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": "Bearer right"},
        )

    assert (wrong.status_code, right.status_code) == (401, 200)


def test_it_answers_hundreds_of_concurrent_requests_at_its_fixed_latency():
    async def burst(server: FakeServer) -> float:
        async def one(writer_reader: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> bytes:
            reader, writer = writer_reader
            body = json.dumps({"messages": [{"role": "user", "content": "q"}]}).encode()
            head = f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
            data = await reader.read()
            writer.close()
            return data

        connections = await asyncio.gather(*(asyncio.open_connection(server.host, server.port) for _ in range(300)))
        started = time.perf_counter()
        replies = await asyncio.gather(*(one(connection) for connection in connections))
        assert all(reply.startswith(b"HTTP/1.1 200") for reply in replies)
        return time.perf_counter() - started

    with FakeServer("openai", latency_ms=100) as server:
        elapsed = asyncio.run(burst(server))

    assert server.request_count == 300
    assert server.max_in_flight >= 100
    assert elapsed < 3  # 300 one after another would take 30 s


def test_control_endpoints_report_reset_and_reconfigure():
    with FakeServer("mes") as server:
        client = httpx.Client(base_url=server.url)
        client.post("/v1/inference", json={"model_id": "m", "prompt": "p"})
        stats = client.get("/_fake/stats").json()
        configured = client.post("/_fake/config", json={"script": ["server_error"], "latency_ms": 5})
        failed = client.post("/v1/inference", json={"model_id": "m", "prompt": "p"})
        refused = client.post("/_fake/config", json={"script": ["nonsense"]})
        reset = client.post("/_fake/reset").json()

    assert stats["requests"] == 1
    assert configured.status_code == 200
    assert failed.status_code == 500
    assert failed.json() == {"success": False, "output": None, "error": "The server had an error."}
    assert refused.status_code == 400
    assert reset["requests"] == 0


def test_it_runs_as_a_standalone_process(tmp_path):
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"2+2?": "4"}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "providers.testing.fake_servers",
            "openai",
            "--port",
            "0",
            "--latency-ms",
            "20",
            "--answers",
            str(answers),
            "--script",
            "rate_limit",
            "--retry-after",
            "3",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().split()
        assert ready[0] == "READY"
        client = httpx.Client(base_url=ready[1])
        limited = _ask(client, "2+2?")
        answered = _ask(client, "2+2?")
        stats = client.get("/_fake/stats").json()
    finally:
        process.terminate()
        process.wait(10)

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert answered.json()["choices"][0]["message"]["content"] == "4"
    assert stats["requests"] == 2
    assert stats["outcomes"] == {"rate_limit": 1, "ok": 1}
    assert process.returncode == 0
