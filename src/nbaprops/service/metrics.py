"""Prometheus metrics of one service (its own registry, so two apps in one process never collide).

- ``nbaprops_batches{state}`` and ``nbaprops_requests{state}``: counted in the ledger at scrape time (a query,
  like every progress figure, never a counter that could drift from the truth).
- ``nbaprops_consolidation_duration_seconds``: each consolidation this process ran.
- ``nbaprops_http_request_duration_seconds{method,route,status}``: by route template, so a batch id never
  becomes a label value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nbaprops import schema

if TYPE_CHECKING:
    from nbaprops.storage.duckdb import DuckDBStorage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _LedgerCollector(Collector):
    def __init__(self, storage: DuckDBStorage) -> None:
        self.storage = storage

    def collect(self) -> Iterator[Metric]:
        batches = GaugeMetricFamily("nbaprops_batches", "Batches by state.", labels=["state"])
        by_state = dict(
            self.storage.fetchall("SELECT state, count(*) FROM prediction_batches GROUP BY state")
        )
        for state in schema.BATCH_STATES:
            batches.add_metric([state], float(by_state.get(state, 0)))
        yield batches
        requests = GaugeMetricFamily(
            "nbaprops_requests", "Prediction requests by state (all batches).", labels=["state"]
        )
        by_state = dict(
            self.storage.fetchall("SELECT state, count(*) FROM prediction_requests GROUP BY state")
        )
        for state in schema.REQUEST_STATES:
            requests.add_metric([state], float(by_state.get(state, 0)))
        yield requests


class Metrics:
    """The registry of one service and the instruments it records into."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.consolidation = Histogram(
            "nbaprops_consolidation_duration_seconds",
            "Duration of the consolidations this process ran.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.latency = Histogram(
            "nbaprops_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=self.registry,
        )
        self._ledger: _LedgerCollector | None = None

    def watch(self, storage: DuckDBStorage) -> None:
        """Count batches and requests of ``storage`` at every scrape."""
        if self._ledger is None:
            self._ledger = _LedgerCollector(storage)
            self.registry.register(self._ledger)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "Metrics"]
