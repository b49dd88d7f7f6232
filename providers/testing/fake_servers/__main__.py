"""`python -m providers.testing.fake_servers <vendor> ...`: a fake vendor server as its own process."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

import uvloop

from providers.testing.fake_servers.server import FakeServer
from providers.testing.fake_servers.vendors import DEFAULT_MODELS, FAULTS, VENDORS


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m providers.testing.fake_servers", description="Run a fake LLM vendor server on 127.0.0.1."
    )
    parser.add_argument("vendor", choices=VENDORS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on READY).")
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--retry-after", type=float, default=1.0, help="Seconds sent in Retry-After on 429.")
    parser.add_argument("--api-key", default=None, help="Require this key; anything else gets 401.")
    parser.add_argument("--answers", default=None, help="A JSON file mapping prompt to answer.")
    parser.add_argument("--default-answer", default=None, help="Answer for unmapped prompts (default: echo).")
    parser.add_argument("--script", default="", help="Comma-separated outcomes for the first requests.")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="Comma-separated model ids to list.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-concurrent", type=int, default=None, help="Refuse generation requests beyond this many at once (429)."
    )
    parser.add_argument(
        "--no-rate-limit-headers", action="store_true", help="With --max-concurrent: send no x-ratelimit-* headers."
    )
    for fault in FAULTS[1:]:
        parser.add_argument(f"--{fault.replace('_', '-')}-rate", type=float, default=0.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    answers: dict[str, Any] = {}
    if args.answers:
        with open(args.answers, encoding="utf-8") as handle:
            answers = json.load(handle)
    rates = {fault: getattr(args, f"{fault}_rate") for fault in FAULTS[1:] if getattr(args, f"{fault}_rate")}
    server = FakeServer(
        args.vendor,
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        answers=answers,
        default_answer=args.default_answer,
        script=[item for item in args.script.split(",") if item],
        fault_rates=rates,
        retry_after=args.retry_after,
        api_key=args.api_key,
        models=[item for item in args.models.split(",") if item],
        seed=args.seed,
        max_concurrent=args.max_concurrent,
        rate_limit_headers=not args.no_rate_limit_headers,
    )

    async def run() -> None:
        await server.start_serving()
        assert server._stopped is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, server._stopped.set)
        print(f"READY {server.url}", flush=True)
        await server._stopped.wait()
        await server._shutdown()

    # uvloop, as the engine's worker uses: the fake server should cost the machine as little as it can.
    uvloop.run(run())


if __name__ == "__main__":
    main()
