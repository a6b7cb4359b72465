"""OpenAI-compatible model upstreams: the port the model proxy forwards through, an HTTP
implementation for any ``/chat/completions`` base URL, and Server-Sent Events helpers."""

from adapters.llm.sse import data_events, format_comment, format_event
from adapters.llm.upstream import (
    Delivery,
    HttpUpstream,
    InProcess,
    LocalModel,
    ModelUpstream,
    UpstreamReply,
)

__all__ = [
    "Delivery",
    "HttpUpstream",
    "InProcess",
    "LocalModel",
    "ModelUpstream",
    "UpstreamReply",
    "data_events",
    "format_comment",
    "format_event",
]
