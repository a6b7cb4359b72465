"""Time one ``update_job`` carrying one chain record, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.store_update [postgresql+psycopg://... URL]

SQLite runs in a temporary directory (the figure includes the WAL fsync of
``synchronous=FULL``, so it depends on the disk). PostgreSQL runs only when a URL is given;
it should point at a schema you can throw away (``?options=-csearch_path%3D<schema>``).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from adapters.store import SqlStore, sqlite_url
from engine.ports import ChainRecord, JobUpdate

ROUNDS = 2000
DOCUMENT = {"job_id": "bench", "state": "running", "approvals": ["a", "b"], "n": 0}
EVENT = {"event_type": "tool_call", "prev_hash_b64u": "x" * 43, "payload_hash_b64u": "y" * 43}


async def measure(url: str, job_id: str) -> list[float]:
    store = await SqlStore.open(url)
    try:
        await store.create_job(JobUpdate(job_id, 0, "planned", DOCUMENT))
        timings = []
        for version in range(1, ROUNDS + 1):
            update = JobUpdate(
                job_id,
                version,
                "running",
                {**DOCUMENT, "n": version},
                chain=[ChainRecord(job_id, version, EVENT, {"signature_b64u": "s" * 86})],
            )
            start = time.perf_counter()
            await store.update_job(update)
            timings.append(time.perf_counter() - start)
        return timings
    finally:
        await store.close()


def report(name: str, timings: list[float]) -> None:
    micros = sorted(t * 1e6 for t in timings)
    p99 = micros[int(len(micros) * 0.99)]
    print(f"{name}: median {statistics.median(micros):.0f} us, p99 {p99:.0f} us, n={len(micros)}")


async def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as home:
        report("sqlite", await measure(sqlite_url(Path(home)), "bench"))
    if argv:
        report("postgresql", await measure(argv[0], f"bench-{time.time_ns()}"))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
