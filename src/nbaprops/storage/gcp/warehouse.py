"""The warehouse seam on BigQuery (:class:`~nbaprops.storage.seams.Warehouse`).

- **Tables** come from the same contracts as DuckDB's (``schema.py``), their types mapped in
  :func:`bigquery_type`; the main table only ever gains columns.
- **Staging** tables carry an expiration (``expires_hours``), so a staging table nothing consolidates still
  disappears; the janitor removes the rest earlier.
- **Loads** are Parquet load jobs with an explicit schema (``WRITE_APPEND``) under a job id derived from the
  table and ``load_id``: BigQuery refuses a second job with that id (409), which makes a repeated load a
  no-op. A load job is atomic, so when the job of that id failed the load runs again under the next id.
- **Merge** is one multi-statement script: ``ALTER TABLE … ADD COLUMN`` for new staging columns, then
  ``BEGIN TRANSACTION`` … fence by the ``done`` (player_lookup, attempt) rows (an ``ARRAY<STRUCT>`` query
  parameter), newest row per key, empty the staging table, supersede, insert by explicit column list over the
  intersection, refuse two active rows per key (``RAISE``, which rolls everything back) … ``COMMIT
  TRANSACTION``, then the staging ``DROP``. Emptying staging inside the transaction is what keeps two
  concurrent merges of one batch (two coordinators; the per-date lock is per process) from both inserting:
  BigQuery runs transactions that only append side by side, each blind to the other's rows, but cancels one of
  two that delete from the same table; the cancelled one is transient, and its retry finds the staging gone.
  BigQuery refuses DDL on permanent tables inside a transaction, so the column additions come before it (the
  main table keeps a column added by a merge that then failed — it only ever gains columns) and the drop after
  it (a staging table left by a failure there is empty, and merged again without effect).
- **History**: a worker's feature query stays one DuckDB query; :meth:`BigQueryWarehouse.load_history_into`
  copies the input rows of a date window into a DuckDB store, :meth:`BigQueryWarehouse.upload_inputs` seeds
  BigQuery's input tables from the embedded file.

Every call carries a bounded retry deadline and a timeout (a server 500 otherwise keeps the client retrying
for 600 s), queries ``job_retry=None``. :func:`translate` is the one place google.api_core errors become
nbaprops errors. The client library is imported lazily by the caller that builds the client.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from nbaprops import schema
from nbaprops.clock import Clock
from nbaprops.errors import ConfigError, ContractError, NbapropsError, StorageBusyError, TerminalError
from nbaprops.storage._base import Capabilities
from nbaprops.storage._warehouse import INPUT_TABLES, check_staged_rows, input_tables
from nbaprops.storage.gcp.retry import WAREHOUSE_BACKOFF, Backoff, retry
from nbaprops.storage.seams import MergeResult

if TYPE_CHECKING:
    from google.cloud import bigquery
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

    from nbaprops.storage.duckdb import DuckDBStorage
    from nbaprops.storage.inputs import Inputs

log = logging.getLogger(__name__)
T = TypeVar("T")

CAPABILITIES = Capabilities(name="bigquery", multi_process_writers=True)
DUPLICATE_KEYS_MARKER = "nbaprops: duplicate active keys"
_TYPES = {
    "VARCHAR": "STRING",
    "BIGINT": "INT64",
    "INTEGER": "INT64",
    "DOUBLE": "FLOAT64",
    "BOOLEAN": "BOOL",
    "DATE": "DATE",
    "TIMESTAMPTZ": "TIMESTAMP",
    "JSON": "JSON",
}
# The REST API reports legacy type names; SQL (ALTER TABLE, CAST) wants the standard ones.
_LEGACY = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def bigquery_type(duckdb_type: str) -> tuple[str, bool]:
    """The BigQuery type of a contract column's DuckDB type, and whether it is REPEATED (``T[]``).

    Raises:
        ContractError: a type the contracts do not use yet (add it here).
    """
    base = duckdb_type.strip().upper()
    repeated = base.endswith("[]")
    base = base.removesuffix("[]")
    if base not in _TYPES:
        raise ContractError(
            f"no BigQuery type for the contract type {duckdb_type!r}; add it to bigquery_type"
        )
    return _TYPES[base], repeated


def bigquery_schema(table: schema.Table) -> list[bigquery.SchemaField]:
    """The BigQuery schema of a contract table (NOT NULL → REQUIRED, ``T[]`` → REPEATED)."""
    from google.cloud import bigquery  # the gcp extra

    fields = []
    for column in table.columns:
        type_, repeated = bigquery_type(column.type)
        mode = "REPEATED" if repeated else "NULLABLE" if column.nullable else "REQUIRED"
        fields.append(bigquery.SchemaField(column.name, type_, mode=mode, description=column.description))
    return fields


def _sql_type(field: bigquery.SchemaField) -> str:
    type_ = _LEGACY.get(field.field_type.upper(), field.field_type.upper())
    return f"ARRAY<{type_}>" if field.mode == "REPEATED" else type_


_ARROW = {
    "STRING": pa.string(),
    "JSON": pa.string(),
    "INT64": pa.int64(),
    "FLOAT64": pa.float64(),
    "BOOL": pa.bool_(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
}


def _arrow_type(field: bigquery.SchemaField) -> pa.DataType:
    type_ = _ARROW[_LEGACY.get(field.field_type.upper(), field.field_type.upper())]
    return pa.list_(type_) if field.mode == "REPEATED" else type_


def _struct_array(
    name: str, fields: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]
) -> bigquery.ArrayQueryParameter:
    """An ``ARRAY<STRUCT<...>>`` query parameter ``@name`` of ``rows``, each a tuple in ``fields``' order."""
    from google.cloud import bigquery  # the gcp extra

    # The client leaves the struct constructors unannotated.
    struct_type = bigquery.StructQueryParameterType(  # type: ignore[no-untyped-call]
        *(bigquery.ScalarQueryParameterType(kind, name=field) for field, kind in fields)  # type: ignore[no-untyped-call]
    )
    values = [
        bigquery.StructQueryParameter(
            None,
            *(
                bigquery.ScalarQueryParameter(field, kind, value)
                for (field, kind), value in zip(fields, row, strict=True)
            ),
        )
        for row in rows
    ]
    return bigquery.ArrayQueryParameter(name, struct_type, values)


QUOTA_REASONS = frozenset({"quotaExceeded", "rateLimitExceeded"})


def _reasons(exc: BaseException) -> set[str]:
    """The ``reason`` of each error in a Google API error's payload (BigQuery: ``errors[].reason``)."""
    reasons = {str(e.get("reason")) for e in getattr(exc, "errors", None) or () if isinstance(e, dict)}
    reason = getattr(exc, "reason", None)
    return reasons | ({reason} if isinstance(reason, str) else set())


def translate(exc: BaseException, *, action: str) -> NbapropsError:
    """Map a google.api_core / transport error onto the nbaprops tree.

    Transient (retry with a cap): 429, 5xx, timeouts, lost connections, transactions aborted by a concurrent
    update, and a 403 whose reason is ``quotaExceeded`` or ``rateLimitExceeded``. Terminal: bad requests (our SQL
    or data), missing objects, any other 403 or 401 (a :class:`ConfigError`: permission denied, the credentials
    or the account's roles are wrong). The duplicate-key guard of the merge
    script is a :class:`ContractError`.
    """
    from google.api_core import exceptions as gexc  # the gcp extra

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f"BigQuery {action}: {text}"
    if DUPLICATE_KEYS_MARKER in str(exc):
        return ContractError(f"{where}; nothing was changed")
    if isinstance(exc, gexc.Forbidden) and QUOTA_REASONS & _reasons(exc):
        # BigQuery answers a quota or rate limit with 403 too; it passes, a missing role does not.
        return StorageBusyError(f"{where}; a BigQuery quota or rate limit was hit, try again later")
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return ConfigError(
            f"{where}; permission denied: check the credentials and the account's BigQuery roles (docs/cloud.md)"
        )
    # "Failed to commit … transaction" is how the emulator (local-bigquery on DuckLake) reports the conflict that
    # BigQuery reports as "Transaction is aborted due to concurrent update".
    concurrent = re.search(
        r"concurrent update|could not serialize|aborted|failed to commit", str(exc), re.IGNORECASE
    )
    if isinstance(
        exc,
        gexc.TooManyRequests
        | gexc.InternalServerError
        | gexc.BadGateway
        | gexc.ServiceUnavailable
        | gexc.GatewayTimeout
        | gexc.DeadlineExceeded
        | gexc.RetryError
        | TimeoutError
        | ConnectionError,
    ) or (isinstance(exc, gexc.GoogleAPICallError) and concurrent):
        return StorageBusyError(f"{where}; try again")
    if type(exc).__module__.startswith(("requests", "urllib3")):  # transport failures below api_core
        return StorageBusyError(f"{where}; try again")
    return TerminalError(where)


FINGERPRINT_LABEL = "nbaprops_fingerprint"
"""The table label that holds the fingerprint of the input rows last loaded into it (:func:`input_fingerprint`)."""


def input_fingerprint(source: Inputs, table: str, columns: Sequence[str]) -> tuple[int, str]:
    """The rows of ``source``'s ``table`` and a fingerprint of them (a BigQuery label value: lowercase hex):
    the sum of every row's hash over ``columns`` (order-free, so the same rows in any order match) and the
    column names. A batch loads an input table only when this differs from its label, so nightly batches stop
    sending five seasons of box scores again (252,621 rows: 2.3–2.7 s of the emulator's CPU each time)."""
    present = source.table_columns(table)
    wanted = [c for c in columns if c in present]
    row = ", ".join('"' + c.replace('"', '""') + '"' for c in wanted)
    count, total = (
        source.fetchone(
            f'SELECT count(*), coalesce(sum(hash({row})), 0) FROM "{table}"'  # names quoted, the table a contract's
        )
        or (0, 0)
    )
    names = hashlib.sha256("\x1f".join(wanted).encode()).hexdigest()[:8]
    return int(count), f"{int(count):x}-{int(total) % (1 << 64):016x}-{names}"


class BigQueryWarehouse:
    """Staging and the main predictions table in one BigQuery dataset.

    Args:
        client: a ``google.cloud.bigquery.Client`` (the caller decides credentials and endpoint).
        dataset: the dataset id (in the client's project).
        deadline_s: retry deadline of each API call (bounds how long a failing server is retried).
        timeout_s: timeout of each request and of waiting for a job.
        ensure: create the dataset and the main table (or add the contract columns it lacks) now. A process
            of a deployment passes False (``nbaprops gcp setup`` creates them: :meth:`setup`).
        location: where jobs run; None: the dataset's own location, read once (a job in another location
            than its dataset's fails, and ``get_job`` of a regional job without its location is a 404).
        backoff: the waits between tries of a write answered with a transient error (every write is retried
            by error class: conflicts, rate limits and quotas, 5xx, timeouts).
    """

    capabilities = CAPABILITIES

    def __init__(
        self,
        client: bigquery.Client,
        dataset: str,
        *,
        deadline_s: float = 30.0,
        timeout_s: float = 120.0,
        location: str | None = None,
        ensure: bool = True,
        read_client: BigQueryReadClient | None = None,
        backoff: Backoff = WAREHOUSE_BACKOFF,
    ) -> None:
        from google.cloud import bigquery  # the gcp extra

        self.client = client
        self.backoff = backoff
        self.read_client = read_client
        self.dataset = f"{client.project}.{dataset}"
        self.location = location
        self._location_read = False
        self.timeout_s = timeout_s
        self.retry = bigquery.DEFAULT_RETRY.with_deadline(deadline_s)
        if ensure:
            self.ensure_schema()

    # -- plumbing ------------------------------------------------------------------------------
    def _call(self, action: str, fn: Callable[[], T]) -> T:
        from google.api_core import exceptions as gexc  # the gcp extra

        try:
            return fn()
        except (gexc.GoogleAPIError, TimeoutError, ConnectionError, OSError) as exc:
            raise translate(exc, action=action) from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("requests", "urllib3")):
                raise translate(exc, action=action) from exc
            raise

    def _retried(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` (which raises nbaprops errors) with transient errors retried after :attr:`backoff`'s waits."""
        return retry(fn, backoff=self.backoff, what=f"BigQuery {what}")

    @property
    def job_location(self) -> str | None:
        """The location jobs run in: ``location``, else the dataset's (read once; None if it cannot be read)."""
        if self.location is None and not self._location_read:
            from google.api_core import exceptions as gexc  # the gcp extra

            self._location_read = True
            try:
                found = self.client.get_dataset(self.dataset, retry=self.retry, timeout=self.timeout_s)
                self.location = found.location
            except gexc.GoogleAPIError as exc:  # the job then runs where BigQuery infers
                log.warning("could not read the location of %s: %s", self.dataset, exc)
        return self.location

    def _ref(self, table: str) -> str:
        return f"{self.dataset}.{table}"

    def _quoted(self, table: str) -> str:
        return f"`{self._ref(table)}`"

    def _result(self, sql: str, params: Sequence[Any], *, action: str, as_arrow: bool) -> Any:
        """Run ``sql`` (a statement or a script); the rows of its last result, as a list or an Arrow table."""
        from google.cloud import bigquery  # the gcp extra

        config = bigquery.QueryJobConfig(query_parameters=list(params))

        def run() -> Any:
            job = self.client.query(
                sql,
                job_config=config,
                location=self.job_location,
                retry=self.retry,
                job_retry=None,
                timeout=self.timeout_s,
            )
            rows = job.result(retry=self.retry, job_retry=None, timeout=self.timeout_s)
            return rows.to_arrow(create_bqstorage_client=False) if as_arrow else list(rows)

        return self._call(action, run)

    def _query(self, sql: str, params: Sequence[Any] = (), *, action: str) -> list[Any]:
        rows: list[Any] = self._result(sql, params, action=action, as_arrow=False)
        return rows

    def _arrow(self, sql: str, params: Sequence[Any] = (), *, action: str) -> pa.Table:
        return self._result(sql, params, action=action, as_arrow=True)

    def _table(self, name: str) -> bigquery.Table | None:
        """The table's metadata, or None when it does not exist."""
        from google.api_core import exceptions as gexc  # the gcp extra

        try:
            return self.client.get_table(self._ref(name), retry=self.retry, timeout=self.timeout_s)
        except gexc.NotFound:
            return None
        except gexc.GoogleAPIError as exc:
            raise translate(exc, action=f"get table {name}") from exc

    def _columns(self, table: str) -> dict[str, str] | None:
        """``name -> SQL type`` of a table, or None when it does not exist."""
        found = self._table(table)
        return None if found is None else {field.name: _sql_type(field) for field in found.schema}

    def _create_table(
        self,
        contract: schema.Table,
        name: str | None = None,
        *,
        expires_hours: float | None = None,
        partitioned: bool = True,
    ) -> None:
        from google.cloud import bigquery  # the gcp extra

        table = bigquery.Table(self._ref(name or contract.name), schema=bigquery_schema(contract))
        table.description = contract.description
        if partitioned and contract is schema.PREDICTIONS:
            # A merge, a read or an invalidation names one game_date: BigQuery reads that day's partition only,
            # and within it the blocks of the keys it matches, instead of every season stored.
            table.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field="game_date"
            )
            table.clustering_fields = list(schema.PREDICTION_KEY)
        if expires_hours is not None:
            # The server expires the table by its own clock, so this is wall-clock time, not the pipeline's.
            table.expires = datetime.now(UTC) + timedelta(hours=expires_hours)
        self._call(
            f"create table {table.table_id}",
            lambda: self.client.create_table(table, exists_ok=True, retry=self.retry, timeout=self.timeout_s),
        )

    def _ensure_table(self, contract: schema.Table) -> bool:
        """Create a contract table, or add the contract columns an older one lacks (never drop or retype).
        Returns whether it was created."""
        present = self._columns(contract.name)
        if present is None:
            self._create_table(contract)
            return True
        self._add_columns(contract, present)
        return False

    def add_contract_columns(self, contract: schema.Table) -> list[str]:
        """Add the contract columns an existing table lacks (``ALTER TABLE … ADD COLUMN``: the dataEditor role
        allows it; nothing is dropped or retyped). A table that does not exist is left alone.

        Returns:
            the columns added.
        """

        def add() -> list[str]:
            present = self._columns(contract.name)
            return [] if present is None else self._add_columns(contract, present)

        return self._retried(f"add columns to {contract.name}", add)

    def _add_columns(self, contract: schema.Table, present: dict[str, str]) -> list[str]:
        added: list[str] = []
        for column in contract.columns:
            if column.name not in present:
                type_, repeated = bigquery_type(column.type)
                sql_type = f"ARRAY<{type_}>" if repeated else type_
                log.info("adding column %s.%s", contract.name, column.name)
                self._query(
                    f"ALTER TABLE {self._quoted(contract.name)} ADD COLUMN IF NOT EXISTS `{column.name}` {sql_type}",
                    action=f"add column {column.name} to {contract.name}",
                )
                added.append(column.name)
        return added

    def ensure_schema(self) -> None:
        """Create the dataset and the main predictions table (or add the contract columns it lacks)."""
        self.setup(tables=(schema.PREDICTIONS,))

    def setup(self, *, tables: Sequence[schema.Table] | None = None) -> list[str]:
        """Create the dataset (in ``location``) and the main and input tables, or add the contract columns an
        existing table lacks; what exists is left as it is. ``nbaprops gcp setup`` runs this once per deployment
        (creating a dataset takes ``bigquery.datasets.create``, which no running process is granted).

        Returns:
            what this call created (``dataset p.d``, ``table p.d.t``).
        """
        from google.api_core import exceptions as gexc  # the gcp extra
        from google.cloud import bigquery  # the gcp extra

        created: list[str] = []
        dataset = bigquery.Dataset(self.dataset)
        if self.location:
            dataset.location = self.location

        def create_dataset() -> None:
            with contextlib.suppress(gexc.Conflict):
                self.client.create_dataset(dataset, retry=self.retry, timeout=self.timeout_s)
                created.append(f"dataset {self.dataset}")

        self._call(f"create dataset {self.dataset}", create_dataset)
        for contract in (schema.PREDICTIONS, *input_tables(None)) if tables is None else tables:
            if self._ensure_table(contract):
                created.append(f"table {self._ref(contract.name)}")
        self._warn_unpartitioned()
        return created

    def _warn_unpartitioned(self) -> None:
        """A main table made before it was partitioned stays so (BigQuery cannot partition a table in place):
        say how to rebuild it, since every merge then scans the whole table."""
        main = self._table(schema.PREDICTIONS.name)
        if main is None or main.time_partitioning is not None:
            return
        m = self._quoted(schema.PREDICTIONS.name)
        log.warning(
            "%s is not partitioned: each merge reads the whole table. Rebuild it once, with no batch running: "
            "CREATE TABLE %s PARTITION BY game_date CLUSTER BY %s AS SELECT * FROM %s; then drop the old table "
            "and rename the new one (docs/cloud.md)",
            self._ref(schema.PREDICTIONS.name),
            m.replace(schema.PREDICTIONS.name, schema.PREDICTIONS.name + "_partitioned"),
            ", ".join(schema.PREDICTION_KEY),
            m,
        )

    def _load_parquet(
        self,
        table: str,
        rows: pa.Table,
        *,
        schema_fields: list[bigquery.SchemaField],
        write_disposition: str,
        job_id: str | None = None,
    ) -> bigquery.LoadJob:
        """One Parquet load job (written to a file first: Arrow can abort reading Parquet from memory)."""
        from google.cloud import bigquery  # the gcp extra

        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            schema=schema_fields,
            write_disposition=write_disposition,
        )
        with tempfile.TemporaryDirectory(prefix="nbaprops-load-") as folder:
            path = Path(folder) / "rows.parquet"
            pq.write_table(rows, path)
            with path.open("rb") as source:
                job = self.client.load_table_from_file(
                    source,
                    self._ref(table),
                    job_id=job_id,
                    location=self.job_location,
                    job_config=config,
                    num_retries=2,
                    timeout=self.timeout_s,
                )
        job.result(retry=self.retry, timeout=self.timeout_s)
        return job

    def _loaded_before(self, job_id: str) -> bool:
        """Whether the job of ``job_id`` (started before, maybe by another writer) loaded its rows.

        A failed load job wrote nothing (load jobs are atomic), so False means: load again under the next id.
        """
        from google.api_core import exceptions as gexc  # the gcp extra

        def wait() -> bool:
            earlier = self.client.get_job(
                job_id, location=self.job_location, retry=self.retry, timeout=self.timeout_s
            )
            if earlier.state != "DONE":  # a concurrent writer's load of the same rows: wait for it
                with contextlib.suppress(gexc.GoogleAPICallError):  # its failure is read below
                    earlier.result(retry=self.retry, timeout=self.timeout_s)
            if earlier.error_result is not None:
                log.warning("earlier load job %s failed (%s); loading again", job_id, earlier.error_result)
                return False
            return True

        return self._call(f"read job {job_id}", wait)

    # -- staging -------------------------------------------------------------------------------
    def create_staging(self, batch_id: str, *, expires_hours: float) -> str:
        """Create the batch's staging table (the staging contract) expiring after ``expires_hours``."""
        name = schema.staging_table_name(batch_id)
        self._retried(
            f"create {name}",
            lambda: self._create_table(
                schema.PREDICTIONS, name, expires_hours=expires_hours, partitioned=False
            ),
        )
        return name

    def load_job_id(self, staging_table: str, load_id: str, retry: int = 0) -> str:
        """The deterministic job id of a load (unique per project: dataset, table and load id are in it)."""
        digest = hashlib.sha256(f"{self._ref(staging_table)}|{load_id}".encode()).hexdigest()[:32]
        return f"nbaprops_stage_{digest}" + (f"_r{retry}" if retry else "")

    def stage(self, staging_table: str, rows: pa.Table, *, load_id: str, max_retries: int = 5) -> int:
        """Load ``rows`` by a Parquet load job; a ``load_id`` loaded before changes nothing. A transient error is
        retried (the deterministic job id makes a load that did land a no-op).

        Returns:
            the rows of this load (also when it had been loaded before).

        Raises:
            ContractError: the staging table does not exist or cannot hold the rows.
        """
        return self._retried(
            f"load {load_id} into {staging_table}",
            lambda: self._stage_once(staging_table, rows, load_id=load_id, max_retries=max_retries),
        )

    def _stage_once(self, staging_table: str, rows: pa.Table, *, load_id: str, max_retries: int) -> int:
        from google.api_core import exceptions as gexc  # the gcp extra

        table = self._table(staging_table)
        if table is None:
            raise ContractError(f"staging table {staging_table} does not exist; create it first")
        check_staged_rows(rows, [field.name for field in table.schema], staging_table=staging_table)
        fields = [field for field in table.schema if field.name in rows.column_names]
        for attempt in range(max_retries + 1):
            job_id = self.load_job_id(staging_table, load_id, attempt)
            try:
                self._load_parquet(
                    staging_table, rows, schema_fields=fields, write_disposition="WRITE_APPEND", job_id=job_id
                )
                return int(rows.num_rows)
            except gexc.Conflict:
                if self._loaded_before(job_id):
                    log.info("load %s into %s was done before (job %s)", load_id, staging_table, job_id)
                    return int(rows.num_rows)
            except (gexc.GoogleAPIError, TimeoutError, ConnectionError, OSError) as exc:
                raise translate(exc, action=f"load {load_id} into {staging_table}") from exc
        raise TerminalError(
            f"load {load_id} into {staging_table} failed {max_retries + 1} times; see the jobs"
        )

    def staging_tables(self) -> list[str]:
        tables = self._call(
            f"list tables of {self.dataset}",
            lambda: list(self.client.list_tables(self.dataset, retry=self.retry, timeout=self.timeout_s)),
        )
        return sorted(t.table_id for t in tables if t.table_id.startswith(schema.STAGING_PREFIX))

    def drop_staging(self, name: str) -> None:
        self._retried(
            f"drop {name}",
            lambda: self._call(
                f"drop {name}",
                lambda: self.client.delete_table(
                    self._ref(name), not_found_ok=True, retry=self.retry, timeout=self.timeout_s
                ),
            ),
        )

    def staging_expires(self, name: str) -> datetime | None:
        """When a staging table expires (None: never, or it does not exist)."""
        table = self._table(name)
        expires: datetime | None = None if table is None else table.expires
        return expires

    # -- consolidation -------------------------------------------------------------------------
    def merge(
        self, *, batch_id: str, staging_table: str, game_date: date, done: pa.Table, clock: Clock
    ) -> MergeResult:
        """Consolidate ``staging_table`` in one multi-statement script (see the module docstring).

        A transient error (BigQuery cancels one of two transactions deleting from one table; rate limits) is
        retried after :attr:`backoff`'s waits in seconds, planning again: a merge that did commit before its
        answer was lost finds its staging gone (``staging_found=False``).

        Raises:
            ContractError: two active rows per key would remain (the transaction rolled back).
        """
        return self._retried(
            f"merge {staging_table}",
            lambda: self._merge_once(
                batch_id=batch_id, staging_table=staging_table, game_date=game_date, done=done, clock=clock
            ),
        )

    def _merge_once(
        self, *, batch_id: str, staging_table: str, game_date: date, done: pa.Table, clock: Clock
    ) -> MergeResult:
        from google.cloud import bigquery  # the gcp extra

        main = schema.PREDICTIONS.name
        staging_cols = self._columns(staging_table)
        if staging_cols is None:
            return MergeResult(staging_found=False)
        main_cols = self._columns(main)
        if main_cols is None:
            raise ContractError(f"the main table {self._ref(main)} does not exist; run ensure_schema")
        plan = schema.plan_drift(staging_cols, main_cols, required=(*schema.PREDICTION_KEY, "prediction_id"))
        key = ", ".join(schema.PREDICTION_KEY)
        m, s = self._quoted(main), self._quoted(staging_table)
        alters = "".join(
            f"ALTER TABLE {m} ADD COLUMN IF NOT EXISTS `{column.name}` {column.type};\n"
            for column in plan.add_to_main
        )
        mismatched = {name: main_type for name, _, main_type in plan.type_mismatches}
        insert_cols = ", ".join(f"`{c}`" for c in plan.insert_columns)
        select_cols = ", ".join(
            f"CAST(n.`{c}` AS {mismatched[c]})" if c in mismatched else f"n.`{c}`"
            for c in plan.insert_columns
        )
        # Every statement on main names @game_date (a batch's rows are one date's; a prediction_id hashes its
        # game_id), so on the partitioned main table it reads one day's partition, not every season.
        # An old staging table without attempt can only be fenced by the request's state.
        fence = "d.attempt = s.attempt" if "attempt" in staging_cols else "TRUE"
        script = f"""
DECLARE n_staged INT64 DEFAULT 0;
DECLARE n_fenced_in INT64 DEFAULT 0;
DECLARE n_unique INT64 DEFAULT 0;
DECLARE n_superseded INT64 DEFAULT 0;
DECLARE n_inserted INT64 DEFAULT 0;
DECLARE n_duplicates INT64 DEFAULT 0;
{alters}BEGIN TRANSACTION;
CREATE TEMP TABLE __fenced AS
  SELECT s.* FROM {s} s JOIN UNNEST(@done) d ON d.player_lookup = s.player_lookup AND {fence};
CREATE TEMP TABLE __selected AS
  SELECT * EXCEPT (__rank) FROM (
    SELECT f.*, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY created_at DESC, prediction_id) AS __rank
    FROM __fenced f
  ) WHERE __rank = 1;
SET n_staged = (SELECT COUNT(*) FROM {s});
SET n_fenced_in = (SELECT COUNT(*) FROM __fenced);
SET n_unique = (SELECT COUNT(*) FROM __selected);
DELETE FROM {s} WHERE TRUE;
SET n_superseded = (
  SELECT COUNT(*) FROM {m} m JOIN __selected n USING ({key})
  WHERE m.game_date = @game_date AND m.is_active AND m.prediction_id <> n.prediction_id);
UPDATE {m} m SET is_active = FALSE, superseded_by = n.prediction_id, invalidated_at = @now,
       invalidation_reason = CONCAT('superseded by batch ', @batch_id), updated_at = @now
  FROM __selected n
  WHERE m.game_date = @game_date AND m.is_active AND m.game_id = n.game_id AND m.player_lookup = n.player_lookup
    AND m.market = n.market AND m.system_id = n.system_id AND m.prediction_id <> n.prediction_id;
SET n_inserted = (
  SELECT COUNT(*) FROM __selected n
  WHERE NOT EXISTS (SELECT 1 FROM {m} m WHERE m.game_date = @game_date AND m.prediction_id = n.prediction_id));
INSERT INTO {m} ({insert_cols})
  SELECT {select_cols} FROM __selected n
  WHERE NOT EXISTS (SELECT 1 FROM {m} m WHERE m.game_date = @game_date AND m.prediction_id = n.prediction_id);
SET n_duplicates = (
  SELECT COUNT(*) FROM (SELECT {key} FROM {m} WHERE is_active AND game_date = @game_date
                        GROUP BY {key} HAVING COUNT(*) > 1));
IF n_duplicates > 0 THEN
  RAISE USING MESSAGE = FORMAT('{DUPLICATE_KEYS_MARKER}: %d key(s) would have two active rows', n_duplicates);
END IF;
DROP TABLE __fenced;
DROP TABLE __selected;
COMMIT TRANSACTION;
DROP TABLE IF EXISTS {s};
SELECT n_staged, n_fenced_in, n_unique, n_superseded, n_inserted;
"""
        now = clock.now()
        params = [
            _struct_array(
                "done",
                [("player_lookup", "STRING"), ("attempt", "INT64")],
                zip(
                    done.column("player_lookup").to_pylist(),
                    (int(a) for a in done.column("attempt").to_pylist()),
                    strict=True,
                ),
            ),
            bigquery.ScalarQueryParameter("now", "TIMESTAMP", now),
            bigquery.ScalarQueryParameter("batch_id", "STRING", batch_id),
            bigquery.ScalarQueryParameter("game_date", "DATE", game_date),
        ]
        for column in plan.add_to_main:
            log.warning("drift: adding column %s %s to %s", column.name, column.type, main)
        rows = self._query(script, params, action=f"merge {staging_table}")
        n_staged, n_fenced_in, n_unique, n_superseded, n_inserted = (int(v or 0) for v in rows[0])
        result = MergeResult(
            staging_found=True,
            rows_staged=n_staged,
            rows_fenced_out=n_staged - n_fenced_in,
            rows_deduplicated=n_fenced_in - n_unique,
            rows_inserted=n_inserted,
            rows_superseded=n_superseded,
            drift=plan.as_dict(),
        )
        log.info("batch %s merged from %s: %s", batch_id, staging_table, result)
        return result

    def invalidate(
        self,
        game_date: date,
        *,
        games: Sequence[tuple[str | None, str, str]],
        players: Sequence[tuple[str, datetime]],
        at: datetime,
    ) -> tuple[int, dict[str, int]]:
        """One multi-statement transaction: the rows to deactivate (postponed games first, then ruled-out
        players' rows not already among them), one UPDATE, the counts. Retried on a transient error like
        :meth:`merge` (it only deactivates rows still active, so a second run after a lost answer changes
        nothing more)."""
        return self._retried(
            f"invalidate rows of {game_date}",
            lambda: self._invalidate_once(game_date, games=games, players=players, at=at),
        )

    def _invalidate_once(
        self,
        game_date: date,
        *,
        games: Sequence[tuple[str | None, str, str]],
        players: Sequence[tuple[str, datetime]],
        at: datetime,
    ) -> tuple[int, dict[str, int]]:
        from google.cloud import bigquery  # the gcp extra

        if not games and not players:
            return 0, {}
        if self._table(schema.PREDICTIONS.name) is None:
            return 0, {lookup: 0 for lookup, _ in players}
        m = self._quoted(schema.PREDICTIONS.name)
        script = f"""
BEGIN TRANSACTION;
CREATE TEMP TABLE __hit AS
  SELECT m.prediction_id, m.player_lookup, 'game_postponed' AS reason FROM {m} m
  WHERE m.is_active AND m.game_date = @game_date AND EXISTS (
    SELECT 1 FROM UNNEST(@games) g
    WHERE m.game_id = g.game_id OR (m.team = g.home AND m.opponent = g.away)
       OR (m.team = g.away AND m.opponent = g.home));
INSERT INTO __hit (prediction_id, player_lookup, reason)
  SELECT m.prediction_id, m.player_lookup, 'player_ruled_out' FROM {m} m
  WHERE m.is_active AND m.game_date = @game_date
    AND EXISTS (SELECT 1 FROM UNNEST(@players) p
                WHERE p.player_lookup = m.player_lookup AND m.created_at < p.report_at)
    AND NOT EXISTS (SELECT 1 FROM __hit h WHERE h.prediction_id = m.prediction_id);
UPDATE {m} m SET is_active = FALSE, invalidated_at = @now, invalidation_reason = h.reason, updated_at = @now
  FROM __hit h WHERE m.game_date = @game_date AND m.prediction_id = h.prediction_id AND m.is_active;
COMMIT TRANSACTION;
SELECT reason, player_lookup, COUNT(*) AS n FROM __hit GROUP BY reason, player_lookup;
"""
        params = [
            _struct_array("games", [("game_id", "STRING"), ("home", "STRING"), ("away", "STRING")], games),
            _struct_array("players", [("player_lookup", "STRING"), ("report_at", "TIMESTAMP")], players),
            bigquery.ScalarQueryParameter("game_date", "DATE", game_date),
            bigquery.ScalarQueryParameter("now", "TIMESTAMP", at),
        ]
        rows = self._query(script, params, action=f"invalidate rows of {game_date}")
        postponed = sum(int(n) for reason, _, n in rows if reason == "game_postponed")
        per_player = {lookup: 0 for lookup, _ in players}
        for reason, lookup, n in rows:
            if reason == "player_ruled_out":
                per_player[lookup] = int(n)
        return postponed, per_player

    def active_predictions(self, game_date: date, *, invalidated: Sequence[str] = ()) -> pa.Table:
        from google.cloud import bigquery  # the gcp extra

        key = ", ".join(schema.PREDICTION_KEY)
        return self._arrow(
            f"SELECT * FROM {self._quoted(schema.PREDICTIONS.name)} "
            f"WHERE game_date = @game_date AND (is_active OR invalidation_reason IN UNNEST(@reasons)) "
            f"ORDER BY {key}, created_at",
            [
                bigquery.ScalarQueryParameter("game_date", "DATE", game_date),
                bigquery.ArrayQueryParameter("reasons", "STRING", list(invalidated)),
            ],
            action="read active predictions",
        )

    # -- inputs and history --------------------------------------------------------------------
    def load_history_into(
        self,
        target: DuckDBStorage,
        *,
        since: date,
        until: date,
        tables: Iterable[str] | None = None,
    ) -> dict[str, int]:
        """Copy the input rows dated ``since`` … ``until`` (inclusive) from BigQuery into ``target``.

        A worker builds features with the one DuckDB feature query over an in-memory store filled by this
        (``open_storage(":memory:")`` has every contract table). Tables without a date (teams, aliases) are
        copied whole; an input table absent from the dataset is skipped. Rows whose key ``target`` holds
        already replace it, so refreshing a cached store is safe. Read through the Storage Read API when the
        warehouse has a ``read_client`` (about 8× faster on the emulator), else with one query per table.

        Returns:
            rows copied per table.
        """
        from google.cloud import bigquery  # the gcp extra

        # the embedded driver (duckdb): workers load history into it
        from nbaprops.storage.duckdb.warehouse import _insert_or_replace

        counts: dict[str, int] = {}
        for contract in input_tables(tables):
            present = self._columns(contract.name)
            if present is None:
                log.info("history: no table %s in %s; skipped", contract.name, self.dataset)
                continue
            column = INPUT_TABLES[contract.name]
            if self.read_client is not None:
                restriction = f"{column} BETWEEN DATE '{since}' AND DATE '{until}'" if column else ""
                rows = self._call(
                    f"read {contract.name}", functools.partial(self._read_table, contract.name, restriction)
                )
            else:
                where, params = "", []
                if column is not None:
                    where = f" WHERE `{column}` BETWEEN @since AND @until"
                    params = [
                        bigquery.ScalarQueryParameter("since", "DATE", since),
                        bigquery.ScalarQueryParameter("until", "DATE", until),
                    ]
                rows = self._arrow(
                    f"SELECT * FROM {self._quoted(contract.name)}{where}",
                    params,
                    action=f"read {contract.name}",
                )
            counts[contract.name] = _insert_or_replace(target, contract.name, rows)
        return counts

    def _read_table(self, name: str, row_restriction: str) -> pa.Table:
        """The rows of ``name`` matching ``row_restriction`` through the Storage Read API (Arrow, one stream;
        no query job). A restriction that matches nothing gets a session without streams: the empty table."""
        from google.cloud.bigquery_storage_v1 import types  # the gcp extra

        assert self.read_client is not None
        project, dataset = self.dataset.split(".", 1)
        session = self.read_client.create_read_session(
            parent=f"projects/{self.client.project}",
            read_session=types.ReadSession(
                table=f"projects/{project}/datasets/{dataset}/tables/{name}",
                data_format=types.DataFormat.ARROW,
                read_options=types.ReadSession.TableReadOptions(row_restriction=row_restriction),
            ),
            max_stream_count=1,
            timeout=self.timeout_s,
        )
        schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        # Each response carries one serialized record batch of the session's schema (the reader resumes a
        # stream broken by a transient error at the row it had reached).
        batches = [
            pa.ipc.read_record_batch(
                pa.py_buffer(response.arrow_record_batch.serialized_record_batch), schema
            )
            for stream in session.streams
            for response in self.read_client.read_rows(stream.name)  # type: ignore[no-untyped-call]
        ]
        return pa.Table.from_batches(batches, schema=schema)

    def upload_inputs(self, source: Inputs, *, tables: Iterable[str] | None = None) -> dict[str, int]:
        """Replace BigQuery's input tables with ``source``'s (one Parquet load job each, ``WRITE_TRUNCATE``),
        creating them from the contracts when absent; seeds a GCP deployment from the ingest path.

        Each table's load is retried on a transient error (``WRITE_TRUNCATE`` makes a second load the same).

        Returns:
            rows loaded per table.
        """
        counts: dict[str, int] = {}
        for contract in input_tables(tables):
            counts[contract.name] = self._retried(
                f"load {contract.name}", functools.partial(self._upload_input, source, contract)
            )
        return counts

    def _upload_input(self, source: Inputs, contract: schema.Table) -> int:
        from google.api_core import exceptions as gexc  # the gcp extra

        self._ensure_table(contract)
        # The table's own schema, not the contract's: WRITE_TRUNCATE replaces the schema with the load's, and
        # an input table only ever gains columns.
        table = self._table(contract.name)
        fields = list(table.schema) if table is not None else bigquery_schema(contract)
        count, fingerprint = input_fingerprint(source, contract.name, [f.name for f in fields])
        if (
            table is not None
            and (table.labels or {}).get(FINGERPRINT_LABEL) == fingerprint
            and table.num_rows == count
        ):
            log.info("%s unchanged since its last upload (%d rows): not loaded again", contract.name, count)
            return count
        rows = source.arrow(f'SELECT * FROM "{contract.name}"')
        rows = rows.select([name for name in rows.column_names if name in {f.name for f in fields}])
        for field in fields:  # a Parquet file lacking a column of the schema is refused: send it NULL
            if field.name not in rows.column_names:
                rows = rows.append_column(field.name, pa.nulls(rows.num_rows, _arrow_type(field)))
        try:
            self._load_parquet(
                contract.name,
                rows,
                schema_fields=fields,
                write_disposition="WRITE_TRUNCATE",
            )
        except (gexc.GoogleAPIError, TimeoutError, ConnectionError, OSError) as exc:
            raise translate(exc, action=f"load {contract.name}") from exc
        self._label_fingerprint(contract.name, fingerprint)
        return int(rows.num_rows)

    def _label_fingerprint(self, name: str, fingerprint: str) -> None:
        """Label the table just loaded with its rows' fingerprint; a failure only costs the next batch a load."""
        from google.api_core import exceptions as gexc  # the gcp extra

        try:
            table = self.client.get_table(self._ref(name), retry=self.retry, timeout=self.timeout_s)
            table.labels = {**(table.labels or {}), FINGERPRINT_LABEL: fingerprint}
            self.client.update_table(table, ["labels"], retry=self.retry, timeout=self.timeout_s)
        except (gexc.GoogleAPIError, TimeoutError, ConnectionError, OSError) as exc:
            log.warning(
                "could not label %s with its fingerprint (%s): the next batch loads it again", name, exc
            )
