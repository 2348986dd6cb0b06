"""Google API errors become nbaprops errors at one boundary (:mod:`nbaprops.storage.gcp.errors`).

Transient ones (retried by class, STYLE.md 4) are the ones a later call can win; a duplicate id is a contract
error; anything else is terminal. Mutations tried, each failing here: a class dropped from the transient list,
``AlreadyExists`` falling through to ``TerminalError``, the original not chained as ``__cause__``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_missing_credentials_are_an_error_naming_the_fix_not_a_traceback(tmp_path: Path) -> None:
    """Before: `NBAPROPS_BACKEND=gcp nbaprops worker` without credentials ended in `Error: internal error:
    DefaultCredentialsError` and exit 2."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")
    }
    env.update({"NBAPROPS_BACKEND": "gcp", "NO_GCE_CHECK": "True", "HOME": str(tmp_path)})
    done = subprocess.run(
        [sys.executable, "-m", "nbaprops.cli", "worker", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)
    assert error["kind"] == "ConfigError" and "no Google Cloud credentials" in error["error"], error
