"""The Firestore ledger: one document per batch, one per request, progress by count queries.

Layout (``prefix`` keeps deployments and tests apart in one database)::

    {prefix}_batches/{batch_id}                                  the batch (BatchInfo's fields; summary as JSON)
    {prefix}_batches/{batch_id}/{prefix}_requests/{player_lookup}   one request (prediction_requests' fields)

Requests live under their batch: a batch's queries (by state for progress and claims, its open requests at the
deadline) read only that batch's documents, however many batches are kept (the emulator has no indexes and
scans the collection it is asked about).
The sweep reads only **expired** leases: ``state == "leased" AND lease_expires_at < cutoff`` (a released
request has no expiry, and a range filter never matches a null), not one document per leased request each pass.
The cross-batch queries (the sweep over every batch, an owner's leases when a process stops: ``state ==
"leased" AND lease_expires_at >= 1970-01-01``, which every lease matches) are collection-group queries on
``{prefix}_requests`` — the group name carries the prefix because group names are global to a database. On real
Firestore an equality and a range filter need a **composite index** ``(state ASC, lease_expires_at ASC)`` on that
group, with collection-group scope for the cross-batch queries and collection scope for one batch's (the two
``gcloud firestore indexes composite create`` lines of docs/cloud.md); every other query is served by the
automatic single-field indexes. The emulator needs no index, so the index itself was not exercised here.

**Every state change is a compare-and-set on ONE document**: read it, decide, and write it with Firestore's
``last_update_time`` precondition, so the write lands only if nothing changed the document since it was read
(fencing by attempt and owner is part of the decision). A lost race re-reads and decides again; a claimer
simply skips a document another claimer took. This is an optimistic single-document transaction; Firestore's
server-side transactions lock what they read, and on the emulator 20 claimers racing for one document through
them took 2.5 s (the losers wait out the lock timeout) against 0.3 s with preconditions.

**Progress is** ``where(state ==).count()`` **per state over the batch's requests** (I4). There is no counter
document: a shared document under concurrent updates is the original's lost-completions incident (on the
emulator 1 of 20 concurrent read-modify-write transactions on one document commits).

Batch creation writes the requests first (write batches of at most 500) and the batch document last: the
batch becomes visible only once all its requests exist. A creation that fails half-way deletes the requests it
wrote (best effort) before raising; one killed half-way leaves requests no batch points to, which nothing reads.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from urllib.parse import quote

from google.api_core import exceptions as google_errors
from google.cloud import firestore
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.collection import CollectionReference
from google.cloud.firestore_v1.document import DocumentReference

from nbaprops import schema
from nbaprops.clock import Clock
from nbaprops.errors import ContractError, StorageBusyError, UnknownBatchError
from nbaprops.storage._base import Capabilities
from nbaprops.storage.gcp.errors import gcp_errors
from nbaprops.storage.seams import (
    REQUEST_FIELDS,
    BatchInfo,
    Lease,
    PlayerRequest,
    RequestOutcome,
    SweepResult,
)

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(name="firestore", multi_process_writers=True)

WRITE_BATCH_LIMIT = 500  # Firestore refuses a commit of more writes (the emulator does not check)
CAS_ATTEMPTS = 8  # re-reads after a lost race before a change gives up with a transient error
CLAIM_ROUNDS = 10  # queries for more pending requests when other claimers took the candidates
PARALLEL_CHANGES = 8  # concurrent single-document changes of one call (sweep, fail_requests, complete)
OPEN_STATES = ("pending", "leased")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # every lease expires after it: the range filter that uses the index

Snapshot = DocumentSnapshot[DocumentReference]
Decide = Callable[[dict[str, Any]], dict[str, Any] | None]


def _plain(value: Any) -> Any:
    """Firestore's timestamps (``DatetimeWithNanoseconds``) as plain UTC datetimes."""
    if isinstance(value, datetime):
        return datetime(*value.timetuple()[:6], value.microsecond, tzinfo=UTC)
    return value


def _batch_from_doc(doc: dict[str, Any]) -> BatchInfo:
    summary = doc.get("summary")
    return BatchInfo(
        batch_id=doc["batch_id"],
        game_date=date.fromisoformat(doc["game_date"]),
        state=doc["state"],
        markets=tuple(doc["markets"]),
        systems=tuple(doc["systems"]),
        as_of=_plain(doc["as_of"]),
        created_at=_plain(doc["created_at"]),
        deadline_at=_plain(doc["deadline_at"]),
        consolidated_at=_plain(doc.get("consolidated_at")),
        finished_at=_plain(doc.get("finished_at")),
        staging_table=doc.get("staging_table"),
        summary=json.loads(summary) if isinstance(summary, str) else summary,
        kind=doc.get("kind") or "daily",
    )


def _released(now: datetime) -> dict[str, Any]:
    return {"state": "pending", "lease_owner": None, "lease_expires_at": None, "updated_at": now}


class FirestoreLedger:
    """Batches and requests in Firestore (many processes on many machines may use it at once).

    Args:
        client: a ``google.cloud.firestore.Client`` (it honours ``FIRESTORE_EMULATOR_HOST``).
        prefix: the collection prefix (``{prefix}_batches`` and, under each batch, ``{prefix}_requests``).
    """

    capabilities = CAPABILITIES

    def __init__(self, client: firestore.Client, prefix: str = "nbaprops") -> None:
        self.client = client
        self.prefix = prefix
        self._batches = client.collection(f"{prefix}_batches")
        self._requests_group = f"{prefix}_requests"

    # -- documents -----------------------------------------------------------------------------
    def _request_ref(self, batch_id: str, player_lookup: str) -> DocumentReference:
        # Document ids may not contain "/"; quoting keeps every other lookup readable.
        return self._batch_requests(batch_id).document(quote(player_lookup, safe=":-_.~ '"))

    def _change(
        self,
        ref: DocumentReference,
        decide: Decide,
        *,
        snapshot: Snapshot | None = None,
        skip_on_race: bool = False,
    ) -> dict[str, Any] | None:
        """Compare-and-set one document: ``decide(current)`` returns the update (or None: leave it).

        Returns the document as written, or None when ``decide`` declined, the document does not exist or (with
        ``skip_on_race``) another writer changed it first.
        """
        for _ in range(CAS_ATTEMPTS):
            if snapshot is None:
                snapshot = ref.get()
            if not snapshot.exists:
                return None
            current = snapshot.to_dict() or {}
            update = decide(current)
            if update is None:
                return None
            try:
                ref.update(update, option=self.client.write_option(last_update_time=snapshot.update_time))
            except google_errors.FailedPrecondition:
                if skip_on_race:
                    return None
                snapshot = None
                continue
            return {**current, **update}
        raise StorageBusyError(f"document {ref.path} kept changing under {CAS_ATTEMPTS} attempts; try again")

    def _change_many(
        self, items: Iterable[tuple[DocumentReference, Snapshot | None]], decide: Decide
    ) -> list[dict[str, Any]]:
        """:meth:`_change` over many documents, a few at a time (each document on its own)."""
        work = list(items)
        if not work:
            return []
        with ThreadPoolExecutor(max_workers=min(PARALLEL_CHANGES, len(work))) as pool:
            written = pool.map(lambda item: self._change(item[0], decide, snapshot=item[1]), work)
            return [doc for doc in written if doc is not None]

    def _snapshots(self, batch_id: str, players: Sequence[str]) -> list[Snapshot]:
        refs = [self._request_ref(batch_id, p) for p in dict.fromkeys(players)]
        found: list[Snapshot] = []
        for start in range(0, len(refs), 300):
            found.extend(s for s in self.client.get_all(refs[start : start + 300]) if s.exists)
        return found

    def _batch_requests(self, batch_id: str) -> CollectionReference:
        return cast(CollectionReference, self._batches.document(batch_id).collection(self._requests_group))

    # -- batches -------------------------------------------------------------------------------
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
        """Record the requests (``pending``, attempt 0), then the batch (``running``); see the module's notes."""
        now = clock.now()
        with gcp_errors(f"create batch {batch_id}"):
            batch_ref = self._batches.document(batch_id)
            if batch_ref.get().exists:
                raise ContractError(f"batch {batch_id} already exists; batch ids must be new")
            written: list[DocumentReference] = []
            try:
                for start in range(0, len(requests), WRITE_BATCH_LIMIT):
                    chunk = requests[start : start + WRITE_BATCH_LIMIT]
                    # Counted before the commit: a commit that fails ambiguously may have written its chunk.
                    written += [self._request_ref(batch_id, r.player_lookup) for r in chunk]
                    self._write_requests(batch_id, chunk, now)
            except Exception:
                self._delete_quietly(batch_id, written)
                raise
            batch_ref.create(
                {
                    "batch_id": batch_id,
                    "game_date": game_date.isoformat(),
                    "state": "running",
                    "markets": list(markets),
                    "systems": list(systems),
                    "as_of": as_of,
                    "created_at": now,
                    "deadline_at": deadline_at,
                    "consolidated_at": None,
                    "finished_at": None,
                    "staging_table": staging_table,
                    "summary": None,
                    "kind": kind,
                }
            )
        log.info("batch %s created for %s with %d requests", batch_id, game_date, len(requests))

    def _write_requests(self, batch_id: str, requests: Sequence[PlayerRequest], now: datetime) -> None:
        """One write batch (at most ``WRITE_BATCH_LIMIT``) of new ``pending`` request documents."""
        writes = self.client.batch()
        for request in requests:
            writes.set(
                self._request_ref(batch_id, request.player_lookup),
                {
                    "batch_id": batch_id,
                    "player_lookup": request.player_lookup,
                    "player_id": request.player_id,
                    "player_name": request.player_name,
                    "team": request.team,
                    "opponent": request.opponent,
                    "game_id": request.game_id,
                    "is_home": request.is_home,
                    "state": "pending",
                    "attempt": 0,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "error_code": None,
                    "error_message": None,
                    "rows_staged": None,
                    "created_at": now,
                    "updated_at": now,
                },
            )
        writes.commit()

    def _delete_quietly(self, batch_id: str, refs: Sequence[DocumentReference]) -> None:
        """Best effort: remove the request documents of a creation that failed before its batch document, so
        that no orphan stays behind (a process killed there still leaves them; nothing reads them)."""
        try:
            for start in range(0, len(refs), WRITE_BATCH_LIMIT):
                deletes = self.client.batch()
                for ref in refs[start : start + WRITE_BATCH_LIMIT]:
                    deletes.delete(ref)
                deletes.commit()
        except Exception:  # the creation's own error is the one to raise
            log.warning(
                "batch %s: %d request documents of a failed creation left behind", batch_id, len(refs)
            )

    def get_batch(self, batch_id: str) -> BatchInfo:
        with gcp_errors(f"read batch {batch_id}"):
            snapshot = self._batches.document(batch_id).get()
        if not snapshot.exists:
            raise UnknownBatchError(batch_id)
        return _batch_from_doc(snapshot.to_dict() or {})

    def list_batches(
        self, *, game_date: date | None = None, state: str | None = None, limit: int | None = None
    ) -> list[BatchInfo]:
        query: Any = self._batches
        if game_date is not None:
            query = query.where(filter=FieldFilter("game_date", "==", game_date.isoformat()))
        if state is not None:
            query = query.where(filter=FieldFilter("state", "==", state))
        with gcp_errors("list batches"):
            batches = [_batch_from_doc(s.to_dict() or {}) for s in query.stream()]
        batches.sort(key=lambda b: (b.created_at, b.batch_id), reverse=True)
        # Sorted here rather than by an order_by + limit query, which would need a composite index per filter.
        return batches if limit is None else batches[:limit]

    def running_batch(self, game_date: date) -> str | None:
        running = self.list_batches(game_date=game_date, state="running")
        return running[0].batch_id if running else None

    def latch(self, batch_id: str, *, state: str, summary: dict[str, Any], clock: Clock) -> bool:
        """Set ``consolidated_at`` once: a compare-and-set on the batch document (precondition: unchanged)."""
        now = clock.now()

        def decide(batch: dict[str, Any]) -> dict[str, Any] | None:
            if batch.get("consolidated_at") is not None:
                return None
            return {
                "state": state,
                "consolidated_at": now,
                "finished_at": now,
                "staging_table": None,
                "summary": json.dumps(summary, default=str),
            }

        ref = self._batches.document(batch_id)
        with gcp_errors(f"latch batch {batch_id}"):
            snapshot = ref.get()
            if not snapshot.exists:
                raise UnknownBatchError(batch_id)
            return self._change(ref, decide, snapshot=snapshot) is not None

    # -- requests ------------------------------------------------------------------------------
    def progress(self, batch_id: str) -> dict[str, int]:
        """One count aggregation query per state (I4); never a stored counter.

        The five queries run in one read-only transaction, so they see one snapshot: run one by one while
        workers claim, a request could be counted pending by the first and leased by the second (measured on
        the emulator: 475 counted for a batch of 469).
        """
        requests: Any = self._batch_requests(batch_id)  # the aggregation's stubs do not type-check

        @firestore.transactional
        def count(transaction: Any) -> dict[str, int]:
            counts = dict.fromkeys(schema.REQUEST_STATES, 0)
            for state in schema.REQUEST_STATES:
                query = requests.where(filter=FieldFilter("state", "==", state))
                # Typed as a flat list; it is one list of results per aggregation query (google-cloud-firestore 2.34).
                result: Any = query.count(alias="n").get(transaction=transaction)
                counts[state] = int(result[0][0].value)
            return counts

        with gcp_errors(f"progress of batch {batch_id}"):
            return cast(dict[str, int], count(self.client.transaction(read_only=True)))

    def requests(self, batch_id: str, *, states: Sequence[str] | None = None) -> list[dict[str, Any]]:
        query: Any = self._batch_requests(batch_id)
        if states is not None:
            if not states:
                return []
            query = query.where(filter=FieldFilter("state", "in", list(states)))
        with gcp_errors(f"requests of batch {batch_id}"):
            docs = [s.to_dict() or {} for s in query.stream()]
        docs.sort(key=lambda d: str(d["player_lookup"]))
        return [{name: doc.get(name) for name in REQUEST_FIELDS} for doc in docs]

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
        """Lease up to ``limit`` pending requests: query candidates, then compare-and-set each one.

        A candidate another claimer took first is skipped (never retried); when the candidates run out before
        ``limit``, the pending requests are queried again (at most ``CLAIM_ROUNDS`` times).
        """
        now = clock.now()
        expires = now + timedelta(seconds=lease_seconds)
        leases: list[Lease] = []
        if limit <= 0:
            return leases

        def decide(request: dict[str, Any]) -> dict[str, Any] | None:
            if request.get("state") != "pending":
                return None
            return {
                "state": "leased",
                "attempt": int(request["attempt"]) + 1,
                "lease_owner": owner,
                "lease_expires_at": expires,
                "updated_at": now,
            }

        def take(candidates: list[Snapshot]) -> None:
            # As many compare-and-sets at once as leases are still wanted: never more wins than ``limit``.
            while candidates and len(leases) < limit:
                group, candidates = candidates[: limit - len(leases)], candidates[limit - len(leases) :]
                with ThreadPoolExecutor(max_workers=min(PARALLEL_CHANGES, len(group))) as pool:
                    won = pool.map(
                        lambda s: self._change(s.reference, decide, snapshot=s, skip_on_race=True), group
                    )
                    docs = [doc for doc in won if doc is not None]
                for doc in docs:
                    leases.append(
                        Lease(
                            batch_id,
                            doc["player_lookup"],
                            int(doc["attempt"]),
                            owner,
                            doc["player_name"],
                            doc.get("player_id"),
                            doc.get("team"),
                            doc.get("opponent"),
                            doc.get("game_id"),
                            doc.get("is_home"),
                        )
                    )

        with gcp_errors(f"claim in batch {batch_id}"):
            if players is not None:
                pending = [s for s in self._snapshots(batch_id, players) if s.get("state") == "pending"]
                take(sorted(pending, key=lambda s: str(s.get("player_lookup"))))
            else:
                pending_query = self._batch_requests(batch_id).where(
                    filter=FieldFilter("state", "==", "pending")
                )
                for _ in range(CLAIM_ROUNDS):
                    wanted = limit - len(leases)
                    candidates = list(pending_query.limit(2 * wanted + 4).stream())
                    if not candidates:
                        break
                    # Claimers querying at once see the same candidates: each tries them in its own order, so
                    # most of them win their first compare-and-set instead of all racing for the first document.
                    random.shuffle(candidates)
                    take(candidates)
                    if len(leases) >= limit:
                        break
        leases.sort(key=lambda lease: lease.player_lookup)
        return leases

    def complete(
        self,
        batch_id: str,
        *,
        owner: str,
        outcomes: Sequence[RequestOutcome],
        rows_staged: Mapping[str, int],
        clock: Clock,
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """End each request on its own document, fenced by state ``leased``, ``attempt`` and owner (I7)."""
        if not outcomes:
            return (), ()
        now = clock.now()
        by_player = {o.player_lookup: o for o in outcomes}

        def decide(request: dict[str, Any]) -> dict[str, Any] | None:
            outcome = by_player.get(str(request.get("player_lookup")))
            if (
                outcome is None
                or request.get("state") != "leased"
                or request.get("attempt") != outcome.attempt
                or request.get("lease_owner") != owner
            ):
                return None
            return {
                "state": outcome.state,
                "error_code": outcome.error_code,
                "error_message": outcome.error_message,
                "rows_staged": rows_staged.get(outcome.player_lookup) if outcome.state == "done" else None,
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": now,
            }

        with gcp_errors(f"complete in batch {batch_id}"):
            snapshots = self._snapshots(batch_id, list(by_player))
            written = self._change_many(((s.reference, s) for s in snapshots), decide)
        committed = tuple(sorted({str(doc["player_lookup"]) for doc in written}))
        lost = tuple(sorted(set(by_player) - set(committed)))
        return committed, lost

    def release(self, batch_id: str, leases: Sequence[Lease], *, clock: Clock) -> int:
        if not leases:
            return 0
        now = clock.now()
        held = {(lease.player_lookup, lease.attempt, lease.owner) for lease in leases}

        def decide(request: dict[str, Any]) -> dict[str, Any] | None:
            key = (request.get("player_lookup"), request.get("attempt"), request.get("lease_owner"))
            return _released(now) if request.get("state") == "leased" and key in held else None

        with gcp_errors(f"release in batch {batch_id}"):
            snapshots = self._snapshots(batch_id, [lease.player_lookup for lease in leases])
            return len(self._change_many(((s.reference, s) for s in snapshots), decide))

    def _leased(self, batch_id: str | None, *, expired_before: datetime | None = None) -> list[Snapshot]:
        """Leased requests of one batch (or of all: a collection-group query), only those whose lease expires
        before ``expired_before`` when given (the composite index of the module's notes serves both)."""
        requests = (
            self.client.collection_group(self._requests_group)
            if batch_id is None
            else self._batch_requests(batch_id)
        )
        query = requests.where(filter=FieldFilter("state", "==", "leased"))
        if expired_before is not None:
            query = query.where(filter=FieldFilter("lease_expires_at", "<", expired_before))
        else:
            query = query.where(filter=FieldFilter("lease_expires_at", ">=", EPOCH))
        return list(query.stream())

    def release_owned(self, *, owner_prefix: str, clock: Clock) -> int:
        now = clock.now()

        def decide(request: dict[str, Any]) -> dict[str, Any] | None:
            owner = request.get("lease_owner")
            owned = (
                request.get("state") == "leased" and isinstance(owner, str) and owner.startswith(owner_prefix)
            )
            return _released(now) if owned else None

        with gcp_errors(f"release leases of {owner_prefix}"):
            snapshots = self._leased(None)
            return len(self._change_many(((s.reference, s) for s in snapshots), decide))

    def sweep(
        self,
        *,
        clock: Clock,
        max_attempts: int,
        grace_seconds: float = 0.0,
        batch_id: str | None = None,
        foreign_owner_prefix_not: str | None = None,
    ) -> SweepResult:
        """Reclaim expired leases document by document: only the expired ones are read (a query on
        ``lease_expires_at``), unless ``foreign_owner_prefix_not`` asks for every lease of another owner."""
        now = clock.now()
        cutoff = now - timedelta(seconds=grace_seconds)

        def verdict(request: dict[str, Any]) -> str | None:
            if request.get("state") != "leased":
                return None
            owner = request.get("lease_owner")
            foreign = foreign_owner_prefix_not is not None and not (
                isinstance(owner, str) and owner.startswith(foreign_owner_prefix_not)
            )
            expires = request.get("lease_expires_at")
            expired = expires is not None and _plain(expires) < cutoff
            if not (foreign or expired):
                return None
            if int(request["attempt"]) >= max_attempts:
                return "failed"
            return "released_foreign" if foreign and not expired else "reclaimed"

        verdicts: dict[
            tuple[str, str], str
        ] = {}  # each key is written by the one thread changing that request

        def decide(request: dict[str, Any]) -> dict[str, Any] | None:
            outcome = verdict(request)
            if outcome is None:
                return None
            verdicts[(str(request["batch_id"]), str(request["player_lookup"]))] = outcome
            if outcome == "failed":
                return {
                    "state": "failed",
                    "error_code": "max_attempts_exceeded",
                    "error_message": f"lease expired after {request['attempt']} attempt(s)",
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "updated_at": now,
                }
            return _released(now)

        with gcp_errors("sweep"):
            expired_before = None if foreign_owner_prefix_not is not None else cutoff
            snapshots = self._leased(batch_id, expired_before=expired_before)
            written = self._change_many(((s.reference, s) for s in snapshots), decide)
        counts = {"reclaimed": 0, "failed": 0, "released_foreign": 0}
        for doc in written:
            counts[verdicts[(str(doc["batch_id"]), str(doc["player_lookup"]))]] += 1
        result = SweepResult(**counts)
        if result.reclaimed or result.failed or result.released_foreign:
            log.info("sweep: %s", result)
        return result

    def fail_requests(
        self,
        batch_id: str,
        *,
        error_code: str,
        clock: Clock,
        players: Sequence[str] | None = None,
        error_message: str | None = None,
    ) -> int:
        now = clock.now()

        def decide(request: dict[str, Any]) -> dict[str, Any] | None:
            if request.get("state") not in OPEN_STATES:
                return None
            return {
                "state": "failed",
                "error_code": error_code,
                "error_message": error_message,
                "lease_owner": None,
                "lease_expires_at": None,
                "updated_at": now,
            }

        with gcp_errors(f"fail requests of batch {batch_id}"):
            if players is None:
                query = self._batch_requests(batch_id).where(
                    filter=FieldFilter("state", "in", list(OPEN_STATES))
                )
                snapshots = list(query.stream())
            else:
                snapshots = self._snapshots(batch_id, players)
            return len(self._change_many(((s.reference, s) for s in snapshots), decide))
