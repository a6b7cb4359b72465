"""``make load``'s verdict on the Slack stream: an ack Slack would not wait for fails the run."""

from __future__ import annotations

from bench.load import Summary
from bench.slack_stream import Acks


def test_an_ack_slower_than_slacks_3_s_fails_the_run() -> None:
    summary = Summary("load", 0, 2)  # no jobs: only the stream decides
    summary.acks = Acks(ms=[12.0, 2999.0], sent=2)
    assert summary.ok
    assert "ack_max=2999.0ms ack_late=0" in summary.line()
    summary.acks.ms.append(3001.0)
    assert not summary.ok
    assert "FAILED" in summary.line()
    assert "ack_late=1" in summary.line()
