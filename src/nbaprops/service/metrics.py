"""Prometheus metrics of one service (its own registry, so two apps in one process never collide).

- ``nbaprops_batches{state}`` and ``nbaprops_requests{state}``: counted in the ledger at scrape time (a query,
  like every progress figure, never a counter that could drift from the truth). On the embedded backend the
  requests of every batch; on ``gcp`` those of the running batches (one count query each: Firestore has no
  cheap count over every request ever made).
- ``nbaprops_consolidation_duration_seconds``: each consolidation this process ran.
- ``nbaprops_http_request_duration_seconds{method,route,status}``: by route template, so a batch id never
  becomes a label value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nbaprops import schema

if TYPE_CHECKING:
    from nbaprops.storage.seams import Backend

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _LedgerCollector(Collector):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Batches by state, requests by state."""
        if self.backend.capabilities.ledger_in_inputs:  # the ledger is a table: two GROUP BYs
            db = self.backend.features
            return (
                dict(db.fetchall("SELECT state, count(*) FROM prediction_batches GROUP BY state")),
                dict(db.fetchall("SELECT state, count(*) FROM prediction_requests GROUP BY state")),
            )
        batches: Counter[str] = Counter()
        requests: Counter[str] = Counter()
        for info in self.backend.ledger.list_batches():
            batches[info.state] += 1
            if info.state == "running":
                requests.update(self.backend.ledger.progress(info.batch_id))
        return dict(batches), dict(requests)

    def collect(self) -> Iterator[Metric]:
        batch_counts, request_counts = self._counts()
        batches = GaugeMetricFamily("nbaprops_batches", "Batches by state.", labels=["state"])
        for state in schema.BATCH_STATES:
            batches.add_metric([state], float(batch_counts.get(state, 0)))
        yield batches
        requests = GaugeMetricFamily(
            "nbaprops_requests",
            "Prediction requests by state (all batches; backend gcp: running batches).",
            labels=["state"],
        )
        by_state = request_counts
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

    def watch(self, backend: Backend) -> None:
        """Count batches and requests of ``backend``'s ledger at every scrape."""
        if self._ledger is None:
            self._ledger = _LedgerCollector(backend)
            self.registry.register(self._ledger)

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "Metrics"]
