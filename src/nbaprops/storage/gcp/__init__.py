"""The scale-out backend on the original's own stack: Firestore ledger, Pub/Sub queue (BigQuery warehouse beside).

Needs the ``gcp`` extra (``pip install 'nbaprops[gcp]'``). Nothing outside this package imports ``google.*``, and
this package is only imported when the GCP backend is chosen, so the embedded default stays light. The clients
honour the standard ``FIRESTORE_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST`` variables themselves.

Google's exceptions become nbaprops errors in one place: :func:`nbaprops.storage.gcp.errors.translate`.
"""

from __future__ import annotations

from nbaprops.storage.gcp.errors import gcp_errors, translate
from nbaprops.storage.gcp.ledger import FirestoreLedger
from nbaprops.storage.gcp.queue import PubSubNames, PubSubQueue, ensure_pubsub

__all__ = ["FirestoreLedger", "PubSubNames", "PubSubQueue", "ensure_pubsub", "gcp_errors", "translate"]
