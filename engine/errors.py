"""The one error tree of breakglass.

Every error we raise derives from :class:`BreakGlassError`. Foreign exceptions are mapped
at the adapter edge with ``raise OurError(...) from exc``; :func:`describe` turns any of
them into the single line a person sees in chat or on the command line.

::

    BreakGlassError
    ├── InputError                 bad input from a person or a peer; state left intact
    │   ├── StrictJsonError        duplicate key, NaN/Infinity, lone surrogate, int > 2^53
    │   ├── TemplateError          unknown template, malformed target, duration above maximum
    │   └── TooLarge               a body or policy above its size limit
    ├── VerificationError          a signed artifact failed a check; ``code`` is the reason
    │                              code of the clawsig registry (HASH_MISMATCH, ...)
    ├── InvalidToken               a CST was refused; callers see one opaque error, the
    │                              precise ``reason`` is kept for the audit log
    ├── GatewayRefusal             a tool call was refused; ``reason`` says why
    ├── JobError                   a command could not be applied to a job
    │   ├── CommandRefused         not allowed now or not by this person (``reason``)
    │   ├── ConcurrentUpdate       compare-and-set lost a race; reload and retry
    │   │   └── GrantClaimed       another open job claimed the same grant first
    │   └── JobNotFound
    ├── AdapterError               an outside system failed
    │   ├── GraphError             Microsoft Graph error (``code``, ``request_id``)
    │   ├── ChatError              Slack / Teams / console delivery failed
    │   ├── ModelError             the model upstream failed
    │   ├── RegistryError          the WPC registry refused or failed (``code``, ``status``)
    │   └── StoreError             the database failed
    │       └── EndUnrecorded      a window ended here that the store could not record yet
    └── ConfigError                configuration is missing or wrong
        └── ConfigProblems         several at once (``problems``, one line each)
"""

from __future__ import annotations


class BreakGlassError(Exception):
    """Base of every error breakglass raises on purpose."""


class InputError(BreakGlassError):
    """Input from a person or a peer was malformed; nothing was changed."""


class StrictJsonError(InputError):
    """JSON that a strict parser refuses (duplicates, NaN, lone surrogates, huge ints)."""


class TemplateError(InputError):
    """A request does not fit its policy template."""


class TooLarge(InputError):
    """A body, policy or field is above its size limit."""


class VerificationError(BreakGlassError):
    """A signed artifact failed verification.

    ``code`` is a reason code of the clawsig reference registry, for example
    ``HASH_MISMATCH`` or ``SIGNATURE_INVALID``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InvalidToken(BreakGlassError):
    """A scoped token was refused.

    ``str(err)`` is deliberately opaque; ``reason`` holds the precise cause (for example
    ``TOKEN_EXPIRED``) and goes to the audit log, never back to the presenter.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__("invalid token")
        self.reason = reason
        self.detail = detail


class GatewayRefusal(BreakGlassError):
    """The tool gateway refused a call; ``reason`` is a stable code such as TOOL_DENIED."""

    def __init__(self, reason: str, detail: str = "", kill_trigger: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.kill_trigger = kill_trigger


class JobError(BreakGlassError):
    """A command could not be applied to a job."""


class CommandRefused(JobError):
    """The command is not allowed in this state or for this person."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ConcurrentUpdate(JobError):
    """Another writer changed the job first; reload it and decide again."""


class GrantClaimed(ConcurrentUpdate):
    """The store holds a claim on the same grant for another open job (``holder``): the
    write is undone; decide again with the open jobs read afresh (``engine.grants``)."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"job {holder} holds a claim on the same grant")
        self.holder = holder


class JobNotFound(JobError):
    """No job has that id."""


class AdapterError(BreakGlassError):
    """An outside system failed."""


class GraphError(AdapterError):
    """Microsoft Graph answered with an error body or could not be reached."""

    def __init__(
        self, code: str, message: str, *, status: int = 0, request_id: str | None = None
    ) -> None:
        super().__init__(f"Graph {status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id


class ChatError(AdapterError):
    """A chat platform refused or did not take a message."""


class ModelError(AdapterError):
    """The model upstream failed."""


class RegistryError(AdapterError):
    """The WPC registry could not be reached or answered with an error (e.g. NOT_FOUND).

    ``status`` is the HTTP status (0 when there was no answer); ``code`` the registry's code.
    A registry answer that fails verification is a VerificationError, not this.
    """

    def __init__(self, code: str, message: str, *, status: int = 0) -> None:
        super().__init__(f"registry {status or 'unreachable'} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class StoreError(AdapterError):
    """The database failed."""


class EndUnrecorded(StoreError):
    """The store refused the write that ends a window, and the window was ended here all the
    same (``bot.unrecorded``): the command is recorded once the store takes writes again."""


STORE_UNAVAILABLE_TEXT = (
    "The store cannot record this right now, so it is not done; try again in a minute "
    "(the service log says why)."
)


class ConfigError(BreakGlassError):
    """Configuration is missing or wrong."""


class ConfigProblems(ConfigError):
    """Several configuration problems found at once; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def describe(err: BaseException) -> str:
    """The one line a person sees for ``err``: never a traceback, never a secret."""
    if isinstance(err, InvalidToken):
        return "The scoped token was refused."
    if isinstance(err, StoreError) and not isinstance(err, EndUnrecorded):
        return STORE_UNAVAILABLE_TEXT  # its own text names the database: for the log only
    if isinstance(err, BreakGlassError):
        text = str(err) or type(err).__name__
        return text.splitlines()[0][:500]
    return f"Internal error ({type(err).__name__}); see the service log."
