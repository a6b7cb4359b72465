"""``make load``'s verdict on the Slack stream: an ack Slack would not wait for fails the run."""

from __future__ import annotations

from bench.load import Summary, busy_share, cpu_ticks
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
