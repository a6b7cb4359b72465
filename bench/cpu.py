"""How busy the machine's cores were over a run, from ``/proc/stat`` (Linux; None elsewhere):
``make load`` reports it because the chat ack tail follows it."""

from __future__ import annotations

from pathlib import Path


def cpu_ticks(stat: str) -> tuple[int, int] | None:
    """(busy, total) clock ticks of all cores from ``/proc/stat``'s text (idle and iowait
    are not busy), or None when it holds no ``cpu`` line."""
    for line in stat.splitlines():
        fields = line.split()
        if fields[:1] == ["cpu"] and len(fields) >= 6:
            ticks = [int(v) for v in fields[1:9]]
            return sum(ticks) - ticks[3] - ticks[4], sum(ticks)
    return None


def machine_ticks() -> tuple[int, int] | None:
    try:
        return cpu_ticks(Path("/proc/stat").read_text())
    except OSError:  # not Linux: the line says n/a
        return None


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.0f}%"
