"""``make bench``: the speed goals, measured beside the raw Ed25519 floor of this machine.

Prints a table and writes ``bench/results.json`` (metric -> {"value", "unit"}). Bounded in
count and time; loopback and a temporary SQLite file only.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing

from bench.fixtures import active_service, bundle_with_model_receipts
from engine.verify import verify_bundle

RESULTS = Path(__file__).resolve().parent / "results.json"
Metrics = dict[str, dict[str, Any]]


def metric(value: float, unit: str) -> dict[str, Any]:
    return {"value": round(value, 4), "unit": unit}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ed25519_floor(n: int = 10_000) -> Metrics:
    key = nacl.signing.SigningKey.generate()
    verify_key = key.verify_key
    messages = [f"{i:043d}".encode() for i in range(n)]
    t0 = time.perf_counter()
    signed = [key.sign(m) for m in messages]
    t1 = time.perf_counter()
    for s in signed:
        verify_key.verify(s)
    t2 = time.perf_counter()
    return {
        "ed25519_sign_floor_10k_s": metric((t1 - t0) * 10_000 / n, "s"),
        "ed25519_verify_floor_10k_s": metric((t2 - t1) * 10_000 / n, "s"),
    }


async def gateway_latency(calls: int = 2000) -> Metrics:
    """One allowed call: load job, decide, run a no-op tool, sign the receipt, durable CAS
    append on SQLite (WAL, synchronous=FULL)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = await active_service(Path(tmp))
        try:
            samples = []
            read_tool, read_args = env.read_call
            for _ in range(calls):
                t0 = time.perf_counter()
                outcome = await env.gateway.call(env.job_id, env.token, read_tool, read_args)
                samples.append((time.perf_counter() - t0) * 1000)
                assert outcome.allowed
            decide_only = env.decision_samples(calls)
        finally:
            await env.close()
    return {
        "gateway_decision_p50_ms": metric(percentile(samples, 0.5), "ms"),
        "gateway_decision_p99_ms": metric(percentile(samples, 0.99), "ms"),
        "gateway_decisions_per_s": metric(1000 / statistics.mean(samples), "calls/s"),
        "gateway_pure_decision_p50_ms": metric(percentile(decide_only, 0.5), "ms"),
    }


async def kill_to_refusal(rounds: int = 60) -> Metrics:
    """Time from the kill command to the first refused tool call of a busy agent."""
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            env = await active_service(Path(tmp) / str(i))
            try:
                samples.append(await env.measure_kill())
            finally:
                await env.close()
    return {
        "kill_to_refusal_p50_ms": metric(percentile(samples, 0.5), "ms"),
        "kill_to_refusal_p99_ms": metric(percentile(samples, 0.99), "ms"),
    }


def bundle_verify(n: int = 10_000) -> Metrics:
    bundle, trust = bundle_with_model_receipts(n)
    t0 = time.perf_counter()
    report = verify_bundle(bundle, trust)
    elapsed = time.perf_counter() - t0
    assert report.valid, report.reasons
    return {"bundle_verify_10k_s": metric(elapsed * 10_000 / n, "s")}


def optional(module: str) -> Callable[[], Metrics] | None:
    """Benchmarks other parts contribute (``run() -> Metrics``), when present."""
    try:
        return importlib.import_module(module).run  # type: ignore[no-any-return]
    except ModuleNotFoundError:
        return None


def main() -> int:
    results: Metrics = {}
    results |= ed25519_floor()
    results |= asyncio.run(gateway_latency())
    results |= asyncio.run(kill_to_refusal())
    results |= bundle_verify()
    for module in ("bench.proxy_overhead", "bench.replica_kill"):
        extra = optional(module)
        if extra is not None:
            results |= extra()
    floor = results["ed25519_verify_floor_10k_s"]["value"]
    results["bundle_verify_ratio_to_floor"] = metric(
        results["bundle_verify_10k_s"]["value"] / floor, "x"
    )
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    width = max(map(len, results))
    for name, value in sorted(results.items()):
        print(f"{name:<{width}}  {value['value']:>12} {value['unit']}")
    print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
