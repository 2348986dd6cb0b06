"""Retry by error class (STYLE.md convention 4): transient errors are retried up to a cap, others never.

Mutations tried in ``retry_transient``, each failing here: retrying every exception; giving up one attempt
early; never retrying.
"""

from __future__ import annotations

import pytest

from nbaprops.errors import ContractError, InputError, StorageBusyError, TransientError
from nbaprops.storage import retry_transient


class FailingCall:
    """A call that raises ``error`` on its first ``failures`` calls, then returns ``"done"``."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


@pytest.mark.parametrize(("failures", "attempts"), [(0, 3), (1, 3), (2, 3), (7, 8)])
def test_transient_errors_are_retried_until_the_call_succeeds(failures: int, attempts: int) -> None:
    call = FailingCall(StorageBusyError("database busy"), failures)
    assert retry_transient(call, attempts=attempts, base_delay=0.0) == "done"
    assert call.calls == failures + 1


@pytest.mark.parametrize("attempts", [1, 3, 8])
def test_the_last_transient_error_propagates_at_the_cap(attempts: int) -> None:
    call = FailingCall(StorageBusyError("database busy"), failures=attempts)
    with pytest.raises(TransientError, match="database busy"):
        retry_transient(call, attempts=attempts, base_delay=0.0)
    assert call.calls == attempts


@pytest.mark.parametrize(
    "error",
    [InputError("bad file"), ContractError("a bug"), ValueError("not ours")],
    ids=["input", "contract", "foreign"],
)
def test_other_errors_are_never_retried(error: Exception) -> None:
    call = FailingCall(error, failures=1)
    with pytest.raises(type(error)):
        retry_transient(call, attempts=8, base_delay=0.0)
    assert call.calls == 1
