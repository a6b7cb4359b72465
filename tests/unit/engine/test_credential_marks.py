"""A credential write in flight (ADR 0020): marked in the job before it leaves the gateway,
settled by its receipt, or by the rollback's removal of every password the job marked; a
job that still holds one at its end is ``failed`` naming the application, whatever the
rollback reported. The mark never says the planned write may have landed, and it is in the
job only, never in the bundle."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from engine import catalog
from engine.access import access_from_config
from engine.containment import EVERY_MARKED_KEY, describe_unrecorded, unrecorded_steps
from engine.cst import TokenKind
from engine.errors import CommandRefused
from engine.job import CLOSED, FAILED, Job
from engine.lifecycle import (
    Command,
    Kill,
    RollbackFinished,
    Rules,
    Tick,
    ToolCallRecorded,
    WriteSending,
)
from engine.verify import verify_bundle
from tests.support.engine_sim import BOB, ROLE_TARGETS, TENANT, JobSim, trust_for

APP = "4f6c1c1e-7a51-5c57-9d43-2b2cf0d8a9e1"
OTHER_APP = "0b8e6a43-51c4-4d0e-9d2f-7f6b2a1c3e55"
KEY = "0f9a3c0e-1111-4a2b-9c3d-5e6f7a8b9c0d"


def rotating() -> JobSim:
    table = {
        "rotate_credentials": ["application_password"],
        "principals": [ROLE_TARGETS["principal_id"]],
        "roles": [ROLE_TARGETS["role_definition_id"]],
    }
    access = access_from_config({"entra-role": table}, {})
    sim = JobSim(rules=Rules(approvers=frozenset({"u-bob", "u-carol", "u-dave"}), access=access))
    sim.request()
    sim.approve_both()
    return sim


def add_args(sim: JobSim, app: str = APP) -> dict[str, Any]:
    assert sim.job is not None
    return {"tenant_id": TENANT, "application_id": app, "job_id": sim.job.job_id}


def sending(sim: JobSim, receipt_id: str, app: str = APP) -> WriteSending:
    return WriteSending(catalog.ADD_APP_PASSWORD, receipt_id, add_args(sim, app))


def receipt(
    sim: JobSim,
    receipt_id: str,
    result: dict[str, Any],
    status: str,
    *,
    tool: str = catalog.ADD_APP_PASSWORD,
    arguments: dict[str, Any] | None = None,
    kind: str = TokenKind.AGENT,
) -> ToolCallRecorded:
    assert sim.job is not None
    token = sim.job.token(kind)
    assert token is not None
    return ToolCallRecorded(
        receipt_id=receipt_id,
        tool_name=tool,
        arguments=arguments if arguments is not None else add_args(sim),
        result=result,
        status=status,
        token_scope_hash=token.claims["token_scope_hash_b64u"],
        latency_ms=1,
        role="write" if kind == TokenKind.AGENT else "rollback",
        started_at=sim.now,
    )


def created(key: str = KEY, app: str = APP) -> dict[str, Any]:
    return {"key_id": key, "application_id": app, "secret_sha256": "0" * 64}


def in_doubt(job: Job | None) -> list[str]:
    assert job is not None
    return [str(mark["receipt_id"]) for mark in job.credentials_in_flight]


def assert_refused(sim: JobSim, command: Command, reason: str) -> None:
    """The command is refused for ``reason`` and the job stays as it was."""
    before = sim.job
    with pytest.raises(CommandRefused) as refused:
        sim.do(command)
    assert refused.value.reason == reason
    assert sim.job == before


def test_a_credential_write_is_marked_before_it_leaves_and_not_as_the_planned_write() -> None:
    sim = rotating()
    t = sim.do(sending(sim, "tr_a"))
    assert t.records == ()  # no chain event: the receipt that follows is the record
    assert in_doubt(t.job) == ["tr_a"]
    assert t.job.credentials_in_flight[0]["application_id"] == APP
    assert (t.job.write_in_flight, t.job.write_sent, t.job.may_have_written) == (
        False,
        False,
        False,
    )
    again = sim.do(sending(sim, "tr_a"))  # the same write marked twice is one mark
    assert in_doubt(again.job) == ["tr_a"]


def test_its_receipt_settles_it_when_it_says_what_became_of_the_write() -> None:
    sim = rotating()
    assert in_doubt(sim.do(sending(sim, "tr_a")).job) == ["tr_a"]
    t = sim.do(receipt(sim, "tr_a", created(), "success"))
    assert in_doubt(t.job) == []
    assert len(t.job.derived_rollback) == 1  # its removal is derived from now on
    assert in_doubt(sim.do(sending(sim, "tr_b")).job) == ["tr_b"]
    t = sim.do(receipt(sim, "tr_b", {"error": "Request_ResourceNotFound"}, "error"))
    assert in_doubt(t.job) == []  # the tenant's (or the adapter's) answer: nothing made


def test_a_write_cancelled_before_its_answer_stays_in_doubt() -> None:
    sim = rotating()
    sim.do(sending(sim, "tr_a"))
    t = sim.do(receipt(sim, "tr_a", {"error": "CANCELLED", "cancelled": True}, "error"))
    assert in_doubt(t.job) == ["tr_a"]  # its request may have reached the tenant


def test_only_a_credential_write_with_its_receipt_id_is_marked_and_only_while_active() -> None:
    sim = rotating()
    not_credential = WriteSending(catalog.READ_ROLE, "tr_a", dict(ROLE_TARGETS))
    assert_refused(sim, not_credential, "NOT_A_CREDENTIAL_WRITE")
    no_receipt_id = WriteSending(catalog.ADD_APP_PASSWORD, "", add_args(sim))
    assert_refused(sim, no_receipt_id, "NOT_A_CREDENTIAL_WRITE")
    sim.do(Kill(BOB))
    assert_refused(sim, sending(sim, "tr_b"), "NOT_ACTIVE")


def test_writes_in_doubt_count_against_the_credential_limit() -> None:
    """Durably, so concurrent writes through several replicas cannot pass it together."""
    sim = rotating()
    sim.do(sending(sim, "tr_a"))
    sim.do(receipt(sim, "tr_a", created(), "success"))
    sim.do(sending(sim, "tr_b"))
    assert_refused(sim, sending(sim, "tr_c"), "CREDENTIAL_LIMIT")


def ended_with_write_in_doubt() -> JobSim:
    sim = rotating()
    sim.run_write_and_verify()
    sim.do(sending(sim, "tr_lost"))  # sent; its receipt never came (a crash, a full store)
    sim.advance(minutes=30)
    sim.do(Tick())
    return sim


def test_a_job_ending_with_a_write_in_doubt_fails_naming_it_whatever_the_rollback_said() -> None:
    sim = ended_with_write_in_doubt()
    t = sim.run_rollback(verified=True)  # the rollback reports nothing left
    assert t.job.state == FAILED
    assert sim.job is not None
    assert describe_unrecorded(sim.job.credentials_in_flight[0]) in t.job.still_privileged
    assert APP in " ".join(t.job.still_privileged)
    report = verify_bundle(sim.bundle(), trust_for(sim.keys))
    assert report.valid, report.reasons
    assert "credentials_in_flight" not in str(sim.bundle())  # the job's, not the bundle's


def sweep(sim: JobSim, result: dict[str, Any], app: str = APP) -> ToolCallRecorded:
    [step] = unrecorded_steps([m for m in in_doubt_marks(sim) if m["application_id"] == app])
    assert step["arguments"]["key_id"] == EVERY_MARKED_KEY
    return receipt(
        sim,
        f"tr_sweep_{sim.now.timestamp()}",
        {"application_id": app, "key_id": EVERY_MARKED_KEY, **result},
        "success",
        tool=catalog.REMOVE_APP_PASSWORD,
        arguments=dict(step["arguments"]),
        kind=TokenKind.ROLLBACK,
    )


def in_doubt_marks(sim: JobSim) -> list[dict[str, Any]]:
    assert sim.job is not None
    return [dict(mark) for mark in sim.job.credentials_in_flight]


def test_a_removal_that_found_the_password_settles_the_write() -> None:
    sim = ended_with_write_in_doubt()
    t = sim.do(sweep(sim, {"removed_key_ids": [KEY], "removed": True}))
    assert in_doubt(t.job) == []
    sim.contain_at_end(sim.token_string(TokenKind.ROLLBACK))
    t = sim.do(RollbackFinished(verified=True))
    assert (t.job.state, t.job.still_privileged) == (CLOSED, ())


def test_a_removal_that_found_nothing_settles_it_only_once_replication_had_time() -> None:
    """Entra is eventually consistent (ADR 0013): an empty read right after the window
    proves nothing; one begun the settle time after its end does."""
    sim = ended_with_write_in_doubt()
    t = sim.do(sweep(sim, {"removed_key_ids": [], "removed": True}))
    assert in_doubt(t.job) == ["tr_lost"]
    sim.advance(seconds=sim.rules.replication_settle.total_seconds() - 2)
    t = sim.do(sweep(sim, {"removed_key_ids": [], "removed": True}))
    assert in_doubt(t.job) == ["tr_lost"]
    sim.advance(seconds=2)
    t = sim.do(sweep(sim, {"removed_key_ids": [], "removed": True}))
    assert in_doubt(t.job) == []


def test_a_removal_counts_only_passwords_no_receipt_recorded() -> None:
    sim = rotating()
    sim.do(sending(sim, "tr_a"))
    sim.do(receipt(sim, "tr_a", created(KEY), "success"))  # recorded: its own step removes it
    sim.do(sending(sim, "tr_lost"))
    sim.advance(minutes=30)
    sim.do(Tick())
    t = sim.do(sweep(sim, {"removed_key_ids": [KEY], "removed": True}))
    assert in_doubt(t.job) == ["tr_lost"]


def test_a_removal_settles_only_its_own_application() -> None:
    sim = rotating()
    sim.do(sending(sim, "tr_a", APP))
    sim.do(sending(sim, "tr_b", OTHER_APP))
    sim.advance(minutes=30)
    sim.do(Tick())
    t = sim.do(sweep(sim, {"removed_key_ids": [KEY], "removed": True}, OTHER_APP))
    assert in_doubt(t.job) == ["tr_a"]


def test_the_agent_cannot_settle_a_write_in_doubt() -> None:
    """Only the rollback's removal does: a receipt under the agent's token with the same
    shape (it could never be allowed: the agent's token has no removal tool) changes nothing."""
    sim = ended_with_write_in_doubt()
    forged = replace(sweep(sim, {"removed_key_ids": [KEY]}), role="write")
    t = sim.do(forged)
    assert in_doubt(t.job) == ["tr_lost"]


def test_the_job_document_carries_the_mark_only_while_there_is_one() -> None:
    sim = rotating()
    assert sim.job is not None
    assert "credentials_in_flight" not in sim.job.to_json()  # a replica before can read it
    sim.do(sending(sim, "tr_a"))
    assert sim.job is not None
    assert Job.from_json(sim.job.to_json()) == sim.job
    assert Job.from_json(sim.job.to_json()).credentials_in_flight[0]["receipt_id"] == "tr_a"
