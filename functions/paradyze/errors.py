"""The domain error tree; no HTTP in here (http.py maps codes to statuses).

    ParadyzeError
    ├── BadRequest            code "bad_request"         malformed input (not JSON, wrong type of body)
    ├── Unauthenticated       code "unauthenticated"     missing or invalid token
    ├── Forbidden             code "forbidden"           a valid token without the needed role
    ├── QuotaExceeded         code "quota_exceeded"      the user has as many agents (running) as allowed
    ├── NotFound              code "not_found"           missing, or not the caller's
    ├── InvalidTransition     code "invalid_transition"  the agent's state does not allow it
    ├── Conflict              code "conflict"            e.g. an idempotency key reused with another body
    │   └── ModelKeyMissing   code "model_key_missing"   the agent has no model to answer with
    ├── PayloadTooLarge       code "payload_too_large"
    ├── UnsupportedMediaType  code "unsupported_media_type"  a body that is not JSON by its Content-Type
    ├── ValidationFailed      code "validation_failed"   fields that fail validation, with their paths
    ├── AgentFailed           code "agent_failed"        the agent got the message but failed to reply;
    │                                                    no Retry-After: sending it again would repeat it
    ├── RateLimited           code "rate_limited"        too many calls of one kind by one user; retry_after
    │   └── TooManyInFlight   code "too_many_in_flight"  too many of one user's requests served at once
    └── Unavailable           code "unavailable"         a dependency is down; retry later
        ├── DatabaseUnavailable
        │   └── SchemaBehind     the database lacks migrations this release needs (deployed functions)
        ├── RuntimeUnavailable   the runtime backend itself (dockerd, Cloud Run API) is down
        ├── StoreUnavailable     the character store (GCS, Supabase Storage) is down
        ├── AgentStartFailed     the agent did not come up healthy
        ├── AgentBusy            another operation on the agent (a wake) is still under way
        └── AgentUnreachable     the agent did not answer a message
"""

from __future__ import annotations

from typing import Any


class ParadyzeError(Exception):
    code = "error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class BadRequest(ParadyzeError):
    code = "bad_request"


class Unauthenticated(ParadyzeError):
    code = "unauthenticated"


class Forbidden(ParadyzeError):
    code = "forbidden"


class NotFound(ParadyzeError):
    code = "not_found"


class InvalidTransition(ParadyzeError):
    code = "invalid_transition"


class Conflict(ParadyzeError):
    code = "conflict"


class ModelKeyMissing(Conflict):
    code = "model_key_missing"


class PayloadTooLarge(ParadyzeError):
    code = "payload_too_large"


class UnsupportedMediaType(ParadyzeError):
    code = "unsupported_media_type"


class ValidationFailed(ParadyzeError):
    code = "validation_failed"


class AgentFailed(ParadyzeError):
    code = "agent_failed"


class QuotaExceeded(ParadyzeError):
    """Waiting does not help: the user must delete or hibernate an agent first."""

    code = "quota_exceeded"


class RateLimited(ParadyzeError):
    """Retrying after retry_after seconds helps."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = max(1, retry_after)


class TooManyInFlight(RateLimited):
    code = "too_many_in_flight"


class Unavailable(ParadyzeError):
    code = "unavailable"
    retry_after = 5


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"


class SchemaBehind(DatabaseUnavailable):
    code = "schema_behind"


class RuntimeUnavailable(Unavailable):
    code = "runtime_unavailable"


class StoreUnavailable(Unavailable):
    code = "store_unavailable"


class AgentStartFailed(Unavailable):
    code = "agent_start_failed"


class AgentBusy(Unavailable):
    code = "unavailable"  # the same answer as before it had a class of its own


class AgentUnreachable(Unavailable):
    code = "agent_unreachable"
