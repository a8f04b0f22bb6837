"""The Cloud Run Admin API as the cloud_run backend uses it: the client, waits, retries, and the one
place where its errors become domain errors."""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import AgentStartFailed, ParadyzeError, RuntimeUnavailable
from ..google_rest import rest_client
from ..settings import Settings
from .base import scrub_secrets

if TYPE_CHECKING:  # google-cloud-run loads only when this backend is used
    from google.cloud.run_v2 import ServicesClient

RPC_TIMEOUT = 30.0
# Reads retry a 503 for at most this long (the library's default is 10 s): alive() is polled
# while an agent starts, and a caller would rather see RuntimeUnavailable soon and retry.
_READ_RETRY_S = 4.0


class Missing(Exception):
    """The service does not exist (NotFound, translated in api_errors)."""


def services_client(settings: Settings) -> ServicesClient:
    """A client of the Admin API: the real one, or the endpoint settings name (a local fake)."""
    from google.cloud import run_v2

    return rest_client(run_v2.ServicesClient, settings.cloud_run_api_endpoint)


def wait(operation: Any, timeout: float) -> Any:
    """The long-running operation's result, polling from 0.2 s up to 2 s apart, for at most timeout."""
    from google.api_core import retry as retries
    from google.api_core.future import polling

    poll = retries.Retry(predicate=polling.POLLING_PREDICATE, initial=0.2, maximum=2.0, multiplier=1.5)
    return operation.result(timeout=timeout, polling=poll)


@contextlib.contextmanager
def api_errors(action: str, *, start: bool = False, secrets: Iterable[str] = (),
               api: str = "the Cloud Run Admin API") -> Iterator[None]:
    """The one place where Google Cloud client errors (Cloud Run's, Secret Manager's) become domain errors.

    NotFound becomes Missing (callers decide whether that is fine); an API that does not
    answer (unreachable, 503, deadline, no credentials) becomes RuntimeUnavailable; any
    other refusal or a deployment that fails or times out is AgentStartFailed while
    starting and RuntimeUnavailable otherwise. Messages never carry env values.
    """
    import requests
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exceptions

    secrets = list(secrets)
    failed = AgentStartFailed if start else RuntimeUnavailable
    try:
        yield
    except ParadyzeError:
        raise
    except gexc.NotFound as exc:
        raise Missing(action) from exc
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError) as exc:
        raise RuntimeUnavailable(f"cannot {action}: {api} does not answer") from exc
    except (requests.RequestException, auth_exceptions.TransportError) as exc:
        raise RuntimeUnavailable(
            f"cannot {action}: {api} is unreachable ({type(exc).__name__})"
        ) from exc
    except auth_exceptions.GoogleAuthError as exc:
        raise RuntimeUnavailable(f"cannot {action}: no usable Google credentials ({type(exc).__name__})") from exc
    except concurrent.futures.TimeoutError as exc:
        raise failed(f"cannot {action}: Cloud Run did not finish in time ({exc})") from exc
    except gexc.GoogleAPICallError as exc:
        reason = scrub_secrets(f"{type(exc).__name__}: {exc.message}", secrets)
        raise failed(f"cannot {action}: {reason}") from exc


def read_retry() -> Any:
    from google.api_core import exceptions as gexc
    from google.api_core import retry as retries

    return retries.Retry(
        initial=0.2, maximum=1.0, timeout=_READ_RETRY_S, predicate=retries.if_exception_type(gexc.ServiceUnavailable)
    )
