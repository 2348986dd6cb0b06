"""Backends on Google Cloud: Firestore (ledger), BigQuery (warehouse), Pub/Sub (queue)."""
