"""The bundle files cannot be written (their disk is full, or the folder is not one): the job
still ends whole and people are still told; the files' failure is one ERROR naming the job."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.job import CLOSED
from engine.verify import verify_bundle
from tests.integration.service.conftest import Env
from tests.integration.service.test_jobs import approved, ticked
from tests.support.engine_sim import trust_for

FULL_DEVICE = Path("/dev/full")  # every write fails with ENOSPC, as on a full disk


def full_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "full"
    folder.mkdir()
    if not FULL_DEVICE.exists():
        pytest.skip("this machine has no /dev/full")
    os.symlink(FULL_DEVICE, folder / "job-s1.bundle.json")
    return folder


def not_a_folder(tmp_path: Path) -> Path:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker / "bundles"


@pytest.mark.parametrize("folder", [full_folder, not_a_folder])
async def test_a_job_whose_bundle_files_cannot_be_written_still_ends_and_is_told(
    env: Env, tmp_path: Path, folder: Callable[[Path], Path], caplog: pytest.LogCaptureFixture
) -> None:
    env.service.effects.bundle_dir = folder(tmp_path)
    await approved(env)

    job = await ticked(env, minutes=31)

    assert (job.state, job.rollback_verified, job.still_privileged) == (CLOSED, True, ())
    assert env.tenant.roles == set()
    assert "finish" in env.chat.kinds(), "nobody was told the job ended"
    bundle, _ = await env.service.bundle(job)
    assert verify_bundle(bundle, trust_for(env.service.keys)).valid
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors if "job-s1" in r.getMessage()], "no ERROR names it"
    assert not [r for r in errors if r.exc_info], "a traceback for a disk that is full"
