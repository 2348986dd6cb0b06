"""Google API errors become nbaprops errors at one boundary (:mod:`nbaprops.storage.gcp.errors`).

Transient ones (retried by class, STYLE.md 4) are the ones a later call can win; a duplicate id is a contract
error; anything else is terminal. Mutations tried, each failing here: a class dropped from the transient list,
``AlreadyExists`` falling through to ``TerminalError``, the original not chained as ``__cause__``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("google.api_core", reason="the gcp extra is not installed")

from google.api_core import exceptions as google_errors  # noqa: E402

from nbaprops.errors import ContractError, StorageBusyError, TerminalError, TransientError  # noqa: E402
from nbaprops.storage.gcp.errors import gcp_errors  # noqa: E402


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (google_errors.Aborted("transaction lost a race"), StorageBusyError),
        (google_errors.ServiceUnavailable("connection reset"), StorageBusyError),
        (google_errors.DeadlineExceeded("took too long"), StorageBusyError),
        (google_errors.ResourceExhausted("quota"), StorageBusyError),
        (google_errors.RetryError("retries ran out", cause=None), StorageBusyError),
        (google_errors.AlreadyExists("batch b1"), ContractError),
        (google_errors.PermissionDenied("no role"), TerminalError),
        (google_errors.NotFound("no topic"), TerminalError),
        (google_errors.FailedPrecondition("stale update time"), TerminalError),
    ],
)
def test_google_errors_are_translated_by_class(raised: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected) as info, gcp_errors("claim in batch b1"):
        raise raised
    assert type(info.value) is expected
    assert isinstance(info.value, TransientError) is (expected is StorageBusyError)
    assert info.value.__cause__ is raised
    assert str(info.value).startswith("claim in batch b1: ")


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), gcp_errors("anything"):
        raise KeyError("not Google's")
