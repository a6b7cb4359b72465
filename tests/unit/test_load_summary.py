"""``make load``'s verdict on the Slack stream: an ack Slack would not wait for fails the run,
in whichever phase it came; the goal's figures come from the steady phase alone."""

from __future__ import annotations

from bench.cpu import busy_share, cpu_ticks
from bench.load import STEADY, Summary
from bench.slack_stream import FIRST_PHASE, Acks


def test_an_ack_slower_than_slacks_3_s_fails_the_run() -> None:
    summary = Summary("load", 0, 2)  # no jobs: only the stream decides
    steady = Acks(ms=[4.0, 6.0], sent=2, seconds=1.0)
    summary.acks = {FIRST_PHASE: Acks(ms=[12.0, 2999.0], sent=2, seconds=1.0), STEADY: steady}
    assert summary.ok
    assert "interactions=4 (2/s)" in summary.line()
    assert "ack_max=2999.0ms ack_late=0" in summary.line()
    assert "burst_ack_p99=2999.0ms steady_ack_p50=6.0ms steady_ack_p99=6.0ms" in summary.line()
    summary.acks[FIRST_PHASE].ms.append(3001.0)  # late in the burst: the run fails all the same
    assert not summary.ok
    assert "FAILED" in summary.line()
    assert "ack_late=1" in summary.line()


def test_the_ack_goal_is_measured_in_the_steady_phase() -> None:
    summary = Summary("load", 0, 2)
    summary.acks = {FIRST_PHASE: Acks(ms=[300.0] * 10, sent=10, seconds=1.0)}
    assert "chat_ack_p99_ms" not in summary.figures()  # a burst alone says nothing of the goal
    assert summary.figures()["chat_ack_burst_p99_ms"]["value"] == 300.0
    summary.acks[STEADY] = Acks(ms=[2.0] * 99 + [40.0], sent=100, seconds=0.5)
    figures = summary.figures()
    assert figures["chat_ack_p99_ms"] == {"value": 40.0, "unit": "ms", "goal": 100.0}
    assert figures["chat_ack_p50_ms"]["value"] == 2.0
    assert figures["chat_interactions_per_s"]["value"] == 200.0


STAT = """cpu  100 5 50 800 20 3 2 0 0 0
cpu0 50 2 25 400 10 1 1 0 0 0
intr 12345
"""
LATER = STAT.replace("cpu  100 5 50 800 20 3 2 0", "cpu  250 5 80 830 30 3 2 0")


def test_the_machines_busy_share_comes_from_proc_stat() -> None:
    before, after = cpu_ticks(STAT), cpu_ticks(LATER)
    assert before == (160, 980)  # user nice system irq softirq steal; idle 800, iowait 20
    assert after == (340, 1200)
    assert busy_share(before, after) == (340 - 160) / (1200 - 980)
    assert busy_share(None, after) is None
    assert cpu_ticks("intr 1\n\ncpu 1 2\n") is None  # a blank or short line is no answer
    summary = Summary("load", 0, 2)
    assert "cpu_busy=n/a" in summary.line()
    summary.cpu_busy = busy_share(before, after)
    assert "cpu_busy=82%" in summary.line()
