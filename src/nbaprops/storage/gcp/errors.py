"""Google API errors become nbaprops errors here, and only here (``raise … from``).

Transient (:class:`~nbaprops.errors.StorageBusyError`, retried by class with a cap): ``Aborted`` (a transaction
or precondition lost a race), ``ServiceUnavailable``, ``DeadlineExceeded``, ``ResourceExhausted`` and a client
``RetryError`` (its own retries ran out). ``AlreadyExists`` is a :class:`~nbaprops.errors.ContractError` (a
duplicate id is a bug); missing or unusable credentials are a :class:`~nbaprops.errors.ConfigError` naming the
fix; everything else is terminal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from google.api_core import exceptions as google_errors
from google.auth import exceptions as auth_errors

from nbaprops.errors import ConfigError, ContractError, NbapropsError, StorageBusyError, TerminalError

_TRANSIENT = (
    google_errors.Aborted,
    google_errors.ServiceUnavailable,
    google_errors.DeadlineExceeded,
    google_errors.ResourceExhausted,
    google_errors.RetryError,
)


def translate(exc: google_errors.GoogleAPIError, *, what: str) -> NbapropsError:
    """Map a Google API error raised while doing ``what`` onto the nbaprops tree."""
    text = str(exc).strip()
    if isinstance(exc, _TRANSIENT):
        return StorageBusyError(f"{what}: Google Cloud busy or unreachable, try again: {text}")
    if isinstance(exc, google_errors.AlreadyExists):
        return ContractError(f"{what}: already exists: {text}")
    return TerminalError(f"{what}: {text}")


@contextlib.contextmanager
def gcp_errors(what: str) -> Iterator[None]:
    """Translate any Google API error raised inside the block (``what`` names the operation)."""
    try:
        yield
    except google_errors.GoogleAPIError as exc:
        raise translate(exc, what=what) from exc
    except auth_errors.DefaultCredentialsError as exc:
        raise ConfigError(
            f"{what}: no Google Cloud credentials ({exc}). Run `gcloud auth application-default login`, set "
            "GOOGLE_APPLICATION_CREDENTIALS, or point FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST and "
            "bigquery_endpoint at emulators (docs/cloud.md)"
        ) from exc
