"""Request and response bodies of the ``/v1`` API: these models are the OpenAPI contract.

They describe what the library functions already return (``BatchSummary.as_dict``, ``batch_records``, the
ingest report...); a route only validates its input into the library's types and its output into these. A
prediction row is generated from the declared table contract (:data:`nbaprops.schema.PREDICTIONS`), so the API
gains a column when the table does.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from nbaprops import schema
from nbaprops.markets import MARKETS
from nbaprops.systems import SYSTEM_IDS

GAME_DATE_PATTERN = r"^((19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])|TODAY|TOMORROW|today|tomorrow)$"
BatchState = Literal["running", "complete", "partial"]
Market = Literal[MARKETS]  # type: ignore[valid-type]
SystemId = Literal[SYSTEM_IDS]  # type: ignore[valid-type]


class ErrorBody(BaseModel):
    """Every error: what went wrong and what to do, and the error's class (``kind``)."""

    error: str = Field(description="What went wrong and what to do about it.")
    kind: str = Field(description="The error's class, e.g. InputError, ConflictError, Unauthorized.")
    batch_id: str | None = Field(default=None, description="The batch in the way (409 only).")
    request_id: str | None = Field(
        default=None, description="500 only: the id under which the server logged the error."
    )


class BatchRequest(BaseModel):
    """Start the batch of a game date."""

    model_config = ConfigDict(extra="forbid", strict=True)

    game_date: str = Field(
        pattern=GAME_DATE_PATTERN,
        description="YYYY-MM-DD, TODAY or TOMORROW (US Eastern).",
        examples=["2025-02-12", "TODAY"],
    )
    markets: list[Market] | None = Field(
        default=None, min_length=1, description="Markets to predict [default: the markets setting]."
    )
    systems: list[SystemId] | None = Field(
        default=None, min_length=1, description="Systems to run [default: the systems setting]."
    )
    force: bool = Field(
        default=False, description="End a batch running for the date (partial) and start anew."
    )
    deadline: float | None = Field(
        default=None, gt=0, le=7 * 24 * 60, description="Minutes before the batch ends partial [default: 60]."
    )


class Links(BaseModel):
    self: str
    events: str


class BatchAccepted(BaseModel):
    batch_id: str
    game_date: date
    created: bool = Field(description="False when an existing batch was resumed or stands unchanged.")
    requests: int = Field(description="Players requested.")
    unchanged: bool = Field(
        default=False,
        description="True (status 200): nothing the batch reads changed since this batch, which stands.",
    )
    links: Links


class RequestCounts(BaseModel):
    """Requests of a batch by state (a count of distinct requests, never a sum of deltas)."""

    pending: int
    leased: int
    done: int
    skipped: int
    failed: int


class BatchListItem(BaseModel):
    batch_id: str
    game_date: date
    kind: str = Field(
        description="daily (a date's batch) or line_update (the movers re-predicted by refresh)."
    )
    state: BatchState
    requests: RequestCounts
    created_at: datetime
    consolidated_at: datetime | None


class BatchList(BaseModel):
    batches: list[BatchListItem]


class MissingPlayer(BaseModel):
    """A request that did not end ``done``, and why."""

    player_lookup: str
    player_name: str
    team: str | None
    state: str
    error_code: str | None
    error_message: str | None
    attempt: int


class BatchSummary(BaseModel):
    """State, counts, missing players and drift of a batch (``nbaprops status --json``)."""

    batch_id: str
    game_date: date
    state: BatchState
    requests: RequestCounts
    predictions_staged: int
    active_predictions: int
    staging_tables_left: int
    drift: dict[str, Any]
    duration_s: float
    by_system: dict[str, int]
    by_market: dict[str, int]
    recommendations: dict[str, int]
    missing: list[MissingPlayer]
    resumed: bool


class RunnerInfo(BaseModel):
    """What this server's background run of the batch is doing (absent when it did not run it)."""

    phase: Literal["training", "running", "finished", "failed", "stopped"]
    messages: list[str]
    error: ErrorBody | None


class BatchDetail(BatchSummary):
    """A batch in full: its summary, what it was asked for, timings, consolidation report, runner phase."""

    markets: list[str]
    systems: list[str]
    as_of: datetime
    created_at: datetime
    deadline_at: datetime
    consolidated_at: datetime | None
    finished_at: datetime | None
    consolidation: dict[str, Any] | None
    runner: RunnerInfo | None


class CheckStalledResult(BaseModel):
    reclaimed: int = Field(description="Expired leases put back to pending.")
    failed: int = Field(description="Requests ended failed after max_attempts.")
    released_from_dead_processes: int
    finished_batches: list[BatchSummary] = Field(
        description="Batches finished because their deadline passed."
    )
    stalled_leases_left: int


class CleanupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    older_than_hours: float | None = Field(
        default=None,
        ge=0,
        le=10 * 366 * 24,
        description="Drop staging older than this [default: staging_ttl_hours].",
    )
    dry_run: bool = Field(default=False, description="Change nothing; report what would be dropped.")


class CleanupResult(BaseModel):
    dropped: list[str]
    dropped_count: int
    finished_batches: list[str]
    kept: list[str]
    dry_run: bool = Field(default=False, description="True when nothing was changed (only reported).")


class IngestReport(BaseModel):
    """What an ingest read and stored; kind-specific figures follow (unmatched names for lines...)."""

    model_config = ConfigDict(extra="allow")

    kind: str
    files: list[str]
    rows_read: int
    rows_added: int


_PYTHON_TYPES: dict[str, Any] = {
    "VARCHAR": str,
    "BIGINT": int,
    "INTEGER": int,
    "DOUBLE": float,
    "BOOLEAN": bool,
    "DATE": date,
    "TIMESTAMPTZ": datetime,
}


def _prediction_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for column in (*schema.PREDICTIONS.columns, *schema.BOARD_MARKET_COLUMNS, *schema.BOARD_MOVE_COLUMNS):
        kind = _PYTHON_TYPES[column.type]
        # Every value may be missing in JSON: a NaN the database holds is sent as null.
        annotation = kind | None if column.nullable or kind is float else kind
        fields[column.name] = (annotation, Field(description=column.description))
    return create_model(
        "Prediction",
        __doc__="One active row of player_prop_predictions, with its player-market's offers priced.",
        **fields,
    )


Prediction = _prediction_model()


class PredictionList(BaseModel):
    game_date: date
    count: int = Field(description="Rows in this answer.")
    total: int = Field(description="Rows matching the filters (more than count when limited).")
    predictions: list[Prediction]  # type: ignore[valid-type]


class Offer(BaseModel):
    """One book's offer at one line, priced against the fair distribution."""

    player_name: str | None
    player_lookup: str
    market: str
    bookmaker: str
    line: float
    is_main: bool = Field(description="the book's main line (the most balanced of its lines)")
    over_price: float | None
    under_price: float | None
    book_p_over: float | None = Field(description="the book's own de-vigged P(over | the bet settles)")
    fair_p_over: float | None = Field(description="fair P(over) at this line")
    fair_p_push: float | None = Field(description="fair P(push) at this line")
    ev_over: float | None = Field(description="expected profit per unit of the over at this price")
    ev_under: float | None = Field(description="expected profit per unit of the under at this price")
    overround: float | None
    outlier: bool = Field(description="farther than the market's book gap from the consensus line: never bet")
    eligible: bool = Field(description="may be bet: a book you bet at, no outlier, price near the consensus")


class OfferList(BaseModel):
    game_date: date
    count: int
    offers: list[Offer]


class LadderOffer(BaseModel):
    bookmaker: str
    over_price: float | None
    under_price: float | None
    ev_over: float | None
    ev_under: float | None
    eligible: bool


class LadderLine(BaseModel):
    line: float
    p_over: float | None
    p_under: float | None
    p_push: float | None
    fair_over_odds: float | None = Field(description="American odds of the over with no vig")
    fair_under_odds: float | None = Field(description="American odds of the under with no vig")
    offers: list[LadderOffer] = Field(description="every offer posted at this line")


class Ladder(BaseModel):
    """Fair probability and fair odds of one player-market at every half-point line of a range."""

    game_date: date
    player_name: str | None
    player_lookup: str
    market: str
    consensus_line: float
    fair_p_over: float | None
    fair_over_odds: float | None
    n_books: int
    mean: float | None = Field(description="mean of the fair count distribution")
    lines: list[LadderLine]


class Health(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    ok: bool
    detail: str


class Ready(BaseModel):
    ready: bool
    checks: dict[str, Check]
