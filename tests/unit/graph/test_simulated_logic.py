"""The simulated tenant's rules without HTTP: durations, PIM policy, filters, lag, faults."""

from datetime import UTC, datetime, timedelta

import pytest

from adapters.graph.simulated.directory import default_seed, load_directory
from adapters.graph.simulated.errors import SimError
from adapters.graph.simulated.faults import Fault, FaultPlan
from adapters.graph.simulated.odata import parse_filter
from adapters.graph.simulated.pim import parse_duration, submit
from adapters.graph.simulated.replication import Replication

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
DAVE = "c8d420e6-24f2-50b7-99ea-e4decf6ec878"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def assign(duration: str = "PT30M", **extra: object) -> dict[str, object]:
    return {
        "action": "adminAssign",
        "principalId": DAVE,
        "roleDefinitionId": GLOBAL_ADMIN,
        "directoryScopeId": "/",
        "justification": "because",
        "scheduleInfo": {"expiration": {"type": "afterDuration", "duration": duration}},
    } | extra


def test_durations() -> None:
    assert parse_duration("PT30M") == timedelta(minutes=30)
    assert parse_duration("P1DT2H") == timedelta(days=1, hours=2)
    for bad in ("PT", "30M", "", None, "PT-5M"):
        with pytest.raises(SimError):
            parse_duration(bad)


def test_policy_rules() -> None:
    directory = load_directory(default_seed(), NOW)
    with pytest.raises(SimError, match="ExpirationRule"):
        submit(directory, assign("PT61M"), NOW)
    with pytest.raises(SimError, match="JustificationRule"):
        submit(directory, assign(justification=" "), NOW)
    no_end = assign() | {"scheduleInfo": {"expiration": {"type": "noExpiration"}}}
    with pytest.raises(SimError, match="ExpirationRule"):
        submit(directory, no_end, NOW)
    assert directory.requests == []
    assert submit(directory, assign("PT60M"), NOW)["status"] == "Provisioned"


def test_filters() -> None:
    fields = ("principalId", "roleDefinitionId")
    assert parse_filter("principalId eq 'a' and roleDefinitionId eq 'b'", fields) == {
        "principalId": "a",
        "roleDefinitionId": "b",
    }
    assert parse_filter("principalId eq 'it''s and more'", fields) == {
        "principalId": "it's and more"
    }
    assert parse_filter(None, fields) == {}
    for bad in ("principalId ne 'a'", "other eq 'a'", "principalId eq 'a' or 1 eq 1"):
        with pytest.raises(SimError):
            parse_filter(bad, fields)


def test_replication_lag_by_reads_and_by_seconds() -> None:
    replication = Replication(load_directory(default_seed(), NOW))
    replication.lag_reads = 2
    replication.before_write()
    replication.primary.groups["new"] = {"id": "new"}
    replication.after_write(NOW)
    seen = ["new" in replication.read_view(NOW).groups for _ in range(4)]
    assert seen == [False, False, True, True]

    replication.lag_reads, replication.lag_seconds = 0, 5.0
    replication.before_write()
    replication.primary.groups["later"] = {"id": "later"}
    replication.after_write(NOW)
    assert "later" not in replication.read_view(NOW + timedelta(seconds=4)).groups
    assert "later" in replication.read_view(NOW + timedelta(seconds=5)).groups


def test_replicas_catch_up_once_lag_is_switched_off() -> None:
    """Switching lag off while writes are still in flight lets reads see the primary: the
    replicas used to freeze on the old copy for good (a first-law soak failure)."""
    replication = Replication(load_directory(default_seed(), NOW))
    replication.lag_reads = 2
    replication.before_write()
    replication.primary.groups["new"] = {"id": "new"}
    replication.after_write(NOW)
    assert "new" not in replication.read_view(NOW).groups
    replication.lag_reads = 0
    replication.before_write()
    replication.primary.groups["after"] = {"id": "after"}
    replication.after_write(NOW)
    seen = replication.read_view(NOW).groups
    assert "new" in seen
    assert "after" in seen


def test_faults_fire_their_number_of_times_then_vanish() -> None:
    plan = FaultPlan()
    plan.add(Fault("throttle", method="POST", path="/requests", times=2))
    assert plan.take("GET", "/v1.0/requests") is None
    assert plan.take("POST", "/v1.0/requests") is not None
    assert plan.take("POST", "/v1.0/requests") is not None
    assert plan.take("POST", "/v1.0/requests") is None
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")
