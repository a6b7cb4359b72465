"""The report link both chat platforms put on the audit summary (issue 17), checked once."""

from __future__ import annotations

from typing import Any

PUBLIC = "https://breakglass.example"


def the_report_link(
    links: list[dict[str, Any]], public_url: str | None, job_id: str
) -> dict[str, Any] | None:
    """The one link to the job's readable report, or None: without a public URL, no link."""
    if public_url is None:
        assert links == []
        return None
    (link,) = links
    assert link["url"] == f"{public_url}/v1/reports/{job_id}"
    return link
