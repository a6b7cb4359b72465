"""Prometheus metrics of the service (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()
JOBS = Gauge("breakglass_jobs", "Jobs by state", ["state"], registry=REGISTRY)
APPROVALS = Counter(
    "breakglass_approvals_total", "Approval decisions recorded", ["decision"], registry=REGISTRY
)
KILLS = Counter(
    "breakglass_kills_total",
    "Windows ended by a kill or a kill trigger",
    ["reason"],
    registry=REGISTRY,
)
ROLLBACK_FAILURES = Counter(
    "breakglass_rollback_failures_total", "Jobs that ended failed", registry=REGISTRY
)
REFUSALS = Counter(
    "breakglass_gateway_refusals_total",
    "Tool calls refused by the gateway",
    ["reason"],
    registry=REGISTRY,
)
COMMAND_REFUSALS = Counter(
    "breakglass_command_refusals_total", "Commands refused", ["reason"], registry=REGISTRY
)
GATEWAY_SECONDS = Histogram(
    "breakglass_gateway_call_seconds",
    "Tool call latency through the gateway (decide, run, receipt)",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
    registry=REGISTRY,
)
LEASES_HELD = Gauge(
    "breakglass_leases_held", "Jobs this replica runs (holds the lease of)", registry=REGISTRY
)
REVOCATION_NOTICES = Counter(
    "breakglass_revocation_notices_total",
    "Revocations heard from other replicas (PostgreSQL LISTEN/NOTIFY)",
    registry=REGISTRY,
)
