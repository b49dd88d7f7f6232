"""Memory of a large import (SPEC §14): 100,000 generated records through the import service, in bounded memory.

Writes a file of N generated tests (our JSON lines by default, or Hugging Face Parquet) to a temporary
directory, then imports it with catalog.interchange.importing.test_cases_import into a fresh database and
prints, per size: records created, seconds, the RSS before the import and its peak during it (sampled
every 50 ms from /proc/self/statm) and, with --tracemalloc, the peak of Python allocations (tracemalloc
slows Python down about fivefold). Bounded memory shows as a peak that stays flat when the file grows
tenfold: records are read one at a time and created in chunks of 500.

    .venv/bin/python bench/import_memory.py                      # 10,000 then 100,000 records, JSON lines
    .venv/bin/python bench/import_memory.py --format hf -n 100000
    .venv/bin/python bench/import_memory.py -n 1000 -n 10000 --tracemalloc

Environment: BENCH_DATABASE_URL (default: a new SQLite file in the temporary directory; a PostgreSQL URL
must name a database that may be written to; the bench's tests are left there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


class RssSampler:
    """The process's resident memory before a block and its highest value while the block runs."""

    def __enter__(self) -> RssSampler:
        self.before = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def _record(number: int) -> dict[str, object]:
    return {
        "title": f"Generated test {number}",
        "category": ("math", "geo", "code")[number % 3],
        "prompt": f"What is {number} plus {number}? Answer with the number only. " + "Context. " * 20,
        "expected_output": str(number * 2),
        "evaluation_type": "custom" if number % 2 else "exact_match",
        "evaluation_config": {"scorer": "numeric"} if number % 2 else {},
        "tags": ["generated", f"batch-{number // 1000}"],
    }


def write_jsonl(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            handle.write(json.dumps(_record(number)) + "\n")


def write_parquet(path: Path, count: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("question", pa.string()), ("answer", pa.string()), ("subject", pa.string())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, count, 10_000):
            numbers = range(start, min(start + 10_000, count))
            rows = [_record(number) for number in numbers]
            writer.write_table(
                pa.table(
                    {
                        "question": [row["prompt"] for row in rows],
                        "answer": [row["expected_output"] for row in rows],
                        "subject": [row["category"] for row in rows],
                    },
                    schema=schema,
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--records", type=int, action="append", help="Sizes to import (default 10000, 100000).")
    parser.add_argument("--format", choices=["jsonl", "hf"], default="jsonl")
    parser.add_argument("--tracemalloc", action="store_true", help="Also trace Python allocations (slow).")
    args = parser.parse_args()
    sizes = sorted(args.records or [10_000, 100_000])

    workdir = Path(tempfile.mkdtemp(prefix="ob_import_bench_"))
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openbench.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.models import User
    from catalog.interchange.importing import test_cases_import

    call_command("migrate", verbosity=0)
    author, _ = User.objects.get_or_create(email="import-bench@example.com", defaults={"display_name": "Bench"})

    print(f"format {args.format}; database {os.environ['DATABASE_URL'].split('@')[-1]}")
    header = ("records", "file MB", "created", "seconds", "rec/s", "RSS MB before", "RSS MB peak", "py peak MB")
    print("  ".join(header))
    for size in sizes:
        path = workdir / f"tests-{size}.{'parquet' if args.format == 'hf' else 'jsonl'}"
        (write_parquet if args.format == "hf" else write_jsonl)(path, size)
        column_map = (
            {"prompt": "question", "expected": "answer", "category": "subject"} if args.format == "hf" else None
        )
        if args.tracemalloc:
            tracemalloc.start()
            tracemalloc.reset_peak()
        sampler = RssSampler()
        started = time.perf_counter()
        with sampler, path.open("rb") as stream:
            report = test_cases_import(stream=stream, fmt=args.format, author=author, column_map=column_map)
        elapsed = time.perf_counter() - started
        python_peak = f"{tracemalloc.get_traced_memory()[1] / 1e6:.1f}" if args.tracemalloc else "-"
        tracemalloc.stop()
        values = (
            f"{size:,}",
            f"{path.stat().st_size / 1e6:.1f}",
            f"{report.created:,}",
            f"{elapsed:.1f}",
            f"{report.created / elapsed:.0f}",
            f"{sampler.before / 1e6:.1f}",
            f"{sampler.peak / 1e6:.1f}",
            python_peak,
        )
        print("  ".join(f"{value:>{len(name)}}" for value, name in zip(values, header, strict=True)), flush=True)
        if report.failed:
            print(f"  {report.failed} record(s) failed, e.g. {report.errors[0]}")


if __name__ == "__main__":
    main()
