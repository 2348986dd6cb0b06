"""One router per resource: batches, predictions, operations, ingest, health, dashboard."""
