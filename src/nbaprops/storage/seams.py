"""The three seams every backend implements: **ledger**, **warehouse** and **queue** (DESIGN.md, "Where it runs").

Pipeline code talks to these protocols only; each backend keeps its own dialect in its own package
(``storage/duckdb/`` embedded, ``storage/gcp/`` for Firestore, BigQuery and Pub/Sub). One contract battery
(``tests/storage/test_*_contract.py``, ``test_queue.py``) runs every operation below against every registered backend.

- **Ledger** — batches and requests. One record per request; every state change is fenced by ``attempt`` (and the
  lease owner); progress is a count over the records, never a counter (I4).
- **Warehouse** — staging and the main predictions table: staging tables with a lifetime, idempotent loads per
  chunk and attempt, consolidation as one transaction (supersede, insert by name over the column intersection,
  duplicate check, drop staging), and the janitor's listing.
- **Queue** — how work reaches workers: one message per chunk; redelivery is the retry; the sweeper re-publishes
  what expired. In memory for DuckDB (:class:`~nbaprops.storage.queue.InProcessQueue`, the coordinator's own
  worker threads), Pub/Sub on GCP.

The records the seams exchange are defined here, below the pipeline, so that backends never import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pyarrow as pa

from nbaprops.clock import Clock
from nbaprops.storage._base import Capabilities

if TYPE_CHECKING:
    from nbaprops.storage.inputs import Inputs

TerminalState = Literal["done", "skipped", "failed"]

# The keys of every dict :meth:`Ledger.requests` returns, whatever the backend.
REQUEST_FIELDS = (
    "player_lookup",
    "player_name",
    "team",
    "state",
    "attempt",
    "lease_owner",
    "lease_expires_at",
    "error_code",
    "error_message",
    "rows_staged",
)


@dataclass(frozen=True)
class PlayerRequest:
    """One player expected to play on the batch's date."""

    player_lookup: str
    player_name: str
    player_id: int | None
    team: str | None
    opponent: str | None
    game_id: str | None
    is_home: bool | None


@dataclass(frozen=True)
class Lease:
    """A claimed request: the worker may commit it only with this ``attempt``."""

    batch_id: str
    player_lookup: str
    attempt: int
    owner: str
    player_name: str
    player_id: int | None
    team: str | None
    opponent: str | None
    game_id: str | None
    is_home: bool | None


@dataclass(frozen=True)
class RequestOutcome:
    """How one leased request ends: ``done`` (rows staged), ``skipped`` or ``failed`` with an error code."""

    player_lookup: str
    attempt: int
    state: TerminalState
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class CommitResult:
    committed: tuple[str, ...]
    lost: tuple[str, ...]
    rows_staged: int


@dataclass(frozen=True)
class SweepResult:
    reclaimed: int
    failed: int
    released_foreign: int = 0


@dataclass(frozen=True)
class BatchInfo:
    batch_id: str
    game_date: date
    state: str
    markets: tuple[str, ...]
    systems: tuple[str, ...]
    as_of: datetime
    created_at: datetime
    deadline_at: datetime
    consolidated_at: datetime | None
    finished_at: datetime | None
    staging_table: str | None
    summary: dict[str, Any] | None = field(default=None)
    kind: str = "daily"  # daily, or line_update (a refresh's re-prediction of the players whose line moved)


@dataclass(frozen=True)
class MergeResult:
    """What one consolidation did in the warehouse (the ledger's latch is set after it)."""

    staging_found: bool
    rows_staged: int = 0
    rows_fenced_out: int = 0
    rows_deduplicated: int = 0
    rows_inserted: int = 0
    rows_superseded: int = 0
    drift: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WorkMessage:
    """One unit of queued work: a chunk of a batch's requests (player lookups)."""

    batch_id: str
    players: tuple[str, ...]
    delivery_attempt: int = 1


class Ledger(Protocol):
    """Batches and their requests (states ``pending`` → ``leased`` → ``done`` | ``skipped`` | ``failed``).

    Every method is one atomic change (a transaction on one request record where the backend has no wider
    transactions). Times come from ``clock``; nothing reads the wall clock itself.
    """

    capabilities: Capabilities

    def create_batch(
        self,
        *,
        batch_id: str,
        game_date: date,
        requests: Sequence[PlayerRequest],
        markets: Sequence[str],
        systems: Sequence[str],
        as_of: datetime,
        deadline_at: datetime,
        staging_table: str,
        clock: Clock,
        kind: str = "daily",
    ) -> None:
        """Record the batch (state ``running``, of ``kind``) and one ``pending`` request (attempt 0) per
        player."""
        ...

    def get_batch(self, batch_id: str) -> BatchInfo:
        """The batch; :class:`~nbaprops.errors.UnknownBatchError` when there is none."""
        ...

    def list_batches(
        self, *, game_date: date | None = None, state: str | None = None, limit: int | None = None
    ) -> list[BatchInfo]:
        """Batches, newest first (``created_at`` then ``batch_id`` descending); at most ``limit`` of them."""
        ...

    def running_batch(self, game_date: date) -> str | None:
        """The newest batch of ``game_date`` still ``running``."""
        ...

    def progress(self, batch_id: str) -> dict[str, int]:
        """Requests by state, every state of ``schema.REQUEST_STATES`` present (a count query, I4)."""
        ...

    def claim(
        self,
        batch_id: str,
        *,
        owner: str,
        limit: int,
        lease_seconds: float,
        clock: Clock,
        players: Sequence[str] | None = None,
    ) -> list[Lease]:
        """Lease up to ``limit`` ``pending`` requests to ``owner`` (``attempt += 1``), sorted by player.

        ``players`` restricts the claim to those requests (a queued chunk); requests not ``pending`` are left.
        """
        ...

    def complete(
        self,
        batch_id: str,
        *,
        owner: str,
        outcomes: Sequence[RequestOutcome],
        rows_staged: Mapping[str, int],
        clock: Clock,
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """End requests still ``leased`` by ``owner`` at the outcome's ``attempt`` (fencing, I7).

        ``rows_staged`` (player → rows loaded for that attempt) is recorded with a ``done``. Returns the
        (committed, lost) player lookups, each sorted.
        """
        ...

    def release(self, batch_id: str, leases: Sequence[Lease], *, clock: Clock) -> int:
        """Give leases back (``pending``, attempt kept) when still held at that attempt by that owner."""
        ...

    def release_owned(self, *, owner_prefix: str, clock: Clock) -> int:
        """Give back every lease whose owner starts with ``owner_prefix`` (a process stopping cleanly)."""
        ...

    def sweep(
        self,
        *,
        clock: Clock,
        max_attempts: int,
        grace_seconds: float = 0.0,
        batch_id: str | None = None,
        foreign_owner_prefix_not: str | None = None,
    ) -> SweepResult:
        """Reclaim leases expired for longer than ``grace_seconds`` at any completion ratio (I6): back to
        ``pending``, or ``failed`` (``max_attempts_exceeded``) once ``attempt >= max_attempts``. With
        ``foreign_owner_prefix_not``, leases of any other owner prefix count as expired (single-writer
        backends)."""
        ...

    def fail_requests(
        self,
        batch_id: str,
        *,
        error_code: str,
        clock: Clock,
        players: Sequence[str] | None = None,
        error_message: str | None = None,
    ) -> int:
        """End open (``pending`` or ``leased``) requests ``failed``: all of the batch, or only ``players``."""
        ...

    def requests(self, batch_id: str, *, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The batch's requests as dicts (player_lookup, player_name, team, state, attempt, lease_owner,
        error_code, error_message, rows_staged), sorted by player; ``states`` filters."""
        ...

    def latch(self, batch_id: str, *, state: str, summary: dict[str, Any], clock: Clock) -> bool:
        """Mark the batch consolidated exactly once (state, ``consolidated_at``, ``finished_at``, summary,
        ``staging_table`` cleared). False when it already was."""
        ...


class Warehouse(Protocol):
    """Staging and the main predictions table of one backend."""

    def create_staging(self, batch_id: str, *, expires_hours: float) -> str:
        """Create the batch's staging table (the staging contract's columns) and return its name. Where the
        backend can, the table expires by itself after ``expires_hours`` so nothing is orphaned forever."""
        ...

    def stage(self, staging_table: str, rows: pa.Table, *, load_id: str) -> int:
        """Load ``rows`` (staging contract columns, any order) into ``staging_table``; idempotent per
        ``load_id`` (e.g. batch, chunk and attempt): loading the same ``load_id`` twice keeps one copy."""
        ...

    def merge(
        self, *, batch_id: str, staging_table: str, game_date: date, done: pa.Table, clock: Clock
    ) -> MergeResult:
        """Consolidate in ONE transaction: keep staging rows whose (player_lookup, attempt) is in ``done``,
        newest per key; supersede active main rows of those keys; insert by name over the column
        intersection (new staging columns added to main first; drift reported, I9); refuse two active rows
        per key (I3); drop the staging table. A missing staging table → ``MergeResult(staging_found=False)``."""
        ...

    def staging_tables(self) -> list[str]:
        """Every staging table that exists, by name."""
        ...

    def drop_staging(self, name: str) -> None:
        """Drop a staging table if it exists."""
        ...

    def active_predictions(self, game_date: date, *, invalidated: Sequence[str] = ()) -> pa.Table:
        """The main table's active rows of a date (the invariant checks, the board, picks and grading read
        this), sorted by key; with ``invalidated``, also the rows deactivated for one of those reasons."""
        ...

    def invalidate(
        self,
        game_date: date,
        *,
        games: Sequence[tuple[str | None, str, str]],
        players: Sequence[tuple[str, datetime]],
        at: datetime,
    ) -> tuple[int, dict[str, int]]:
        """In one transaction, deactivate active rows of ``game_date``: those of each game in ``games``
        (``(game_id, home, away)``: its id, or either team against the other) with reason ``game_postponed``,
        then those of each player in ``players`` (``(player_lookup, report_at)``) created before that time with
        ``player_ruled_out``. Idempotent (only active rows change). Returns the rows of postponed games and the
        rows per ruled-out player (every player of ``players`` present)."""
        ...

    def upload_inputs(self, source: Inputs, *, tables: Iterable[str] | None = None) -> dict[str, int]:
        """Make the warehouse's input tables (box scores, lines, schedule, injuries) ``source``'s, for workers
        that read their history there; rows per table. Nothing to copy when ``source`` is the warehouse."""
        ...


class Queue(Protocol):
    """How chunks of work reach workers."""

    def publish(self, messages: Sequence[WorkMessage]) -> int:
        """Send each message once; returns how many were sent."""
        ...

    def consume(
        self,
        handler: Callable[[WorkMessage], bool],
        *,
        stop: Callable[[], bool],
        max_messages: int = 1,
    ) -> None:
        """Deliver messages to ``handler`` until ``stop()``; a True return acknowledges the message, False
        (or an exception) lets it come back (redelivery is the retry; after the maximum delivery attempts it
        goes to the dead-letter topic)."""
        ...

    def dead_letters(self, handler: Callable[[WorkMessage], bool], *, max_messages: int = 100) -> int:
        """Hand dead-lettered messages (delivered the maximum number of times without success) to ``handler``,
        which ends their requests ``failed`` with the reason; True removes a message, False keeps it for a later
        call. Returns how many were removed."""
        ...


class Backend(Protocol):
    """One deployment's seams, as the pipeline receives them.

    ``features`` is where the point-in-time feature query runs: the embedded DuckDB file itself, or (GCP) an
    in-memory DuckDB holding the slice of history a worker loaded from the warehouse — one feature
    implementation for both. ``queue`` is how work reaches workers: in memory for the embedded backend's
    in-process workers, Pub/Sub on GCP — one dispatch loop for both (:mod:`nbaprops.pipeline.coordinator`).
    """

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def warehouse(self) -> Warehouse: ...

    @property
    def queue(self) -> Queue: ...

    @property
    def features(self) -> Inputs: ...

    def close(self) -> None:
        """Release the backend's connections and clients."""
        ...
