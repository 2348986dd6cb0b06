"""Benchmark: the 15-game slate of 2025-02-12 on the GCP backend (the three emulators) and embedded.

Run from the repository root (needs gcloud's Pub/Sub and Firestore emulators, Java and Python 3.13 for the
BigQuery emulator, as the cloud tests do)::

    .venv/bin/python benchmarks/cloud.py [--runs 3] [--systems moving_average] [--history read-api|query]

Every figure is the batch's own ``duration_s`` as ``nbaprops predict --json`` reports it (planning, request
creation, the work, consolidation, summary), through the CLI as a user runs it, with the models trained and
the inputs uploaded to BigQuery before timing. Cloud runs use 1, 2 and 4 ``nbaprops worker`` processes
(``NBAPROPS_WORKERS=0``: the coordinator itself does no work); the embedded run uses the default in-process
workers on the same machine in the same invocation. Loopback only; medians over ``--runs``.

The last line is machine-readable::

    cloud_slate_s=<1 worker> cloud_2w_s=<x> cloud_4w_s=<y> embedded_s=<z> overhead_per_request_ms=<...>

(``overhead_per_request_ms``: (cloud 1 worker − embedded) / requests.) Goal: cloud_slate_s <= 30 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.emulators.bigquery import running as bigquery_running  # noqa: E402
from tests.emulators.google import _running as google_running  # noqa: E402

from nbaprops.ingest import ensure_boxscores  # noqa: E402
from nbaprops.storage import open_storage  # noqa: E402

DATE = "2025-02-12"
GOAL_S = 30.0


def progress(msg: str) -> None:
    print(f"[cloud-bench] {msg}", file=sys.stderr, flush=True)


def nbaprops(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nbaprops.cli", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=log.open("a"),
        text=True,
        cwd=REPO,
    )


def predict(db: Path, env: dict[str, str], log: Path) -> dict[str, object]:
    process = nbaprops(["predict", "--date", DATE, "--db", str(db), "--json", "--force"], env, log)
    out, _ = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise SystemExit(f"predict failed ({process.returncode}); see {log}")
    result: dict[str, object] = json.loads(out)
    if result["state"] != "complete":
        raise SystemExit(f"batch ended {result['state']}: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--systems", default="moving_average,matchup,similarity,gbm,ensemble")
    parser.add_argument(
        "--history",
        choices=("read-api", "query"),
        default="read-api",
        help="how workers read their history from BigQuery: the Storage Read API (default) or queries",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nbaprops-cloud-bench-"))
    log = work / "commands.log"
    seed = work / "seed.duckdb"
    with open_storage(seed) as storage:
        ensure_boxscores(storage)
    common = {
        "NBAPROPS_SYSTEMS": args.systems,
        "NBAPROPS_MARKETS": "points",
        "NBAPROPS_DATA_DIR": str(work / "artifacts"),
        "PYTHONPATH": str(REPO / "src"),
    }
    results: dict[str, list[float]] = {"embedded": [], "1": [], "2": [], "4": []}
    requests = 0
    with contextlib.ExitStack() as stack:
        progress("starting the emulators")
        pubsub = stack.enter_context(google_running("pubsub", "PUBSUB_EMULATOR_HOST", work))
        firestore = stack.enter_context(google_running("firestore", "FIRESTORE_EMULATOR_HOST", work))
        bigquery = stack.enter_context(bigquery_running(work / "bigquery"))
        suffix = uuid.uuid4().hex[:8]
        cloud = {
            **common,
            "NBAPROPS_BACKEND": "gcp",
            "NBAPROPS_GCP_PROJECT": bigquery.project,
            "NBAPROPS_BIGQUERY_ENDPOINT": bigquery.endpoint,
            "NBAPROPS_BIGQUERY_DATASET": f"bench_{suffix}",
            "NBAPROPS_FIRESTORE_PREFIX": f"bench{suffix}",
            "NBAPROPS_PUBSUB_TOPIC": f"bench-{suffix}",
            "PUBSUB_EMULATOR_HOST": pubsub,
            "FIRESTORE_EMULATOR_HOST": firestore,
            "NBAPROPS_WORKERS": "0",
        }
        if args.history == "read-api":
            cloud["NBAPROPS_BIGQUERY_READ_ENDPOINT"] = bigquery.read_endpoint
        embedded_db, cloud_db = work / "embedded.duckdb", work / "cloud.duckdb"
        shutil.copyfile(seed, embedded_db)
        shutil.copyfile(seed, cloud_db)
        progress("nbaprops gcp setup: the topics, subscriptions, dataset and tables (processes create none)")
        if nbaprops(["gcp", "setup", "--json"], cloud, log).wait(timeout=300) != 0:
            raise SystemExit(f"gcp setup failed; see {log}")
        progress("warm-up: training the models, uploading the inputs, one batch each way")
        predict(embedded_db, common, log)
        predict(cloud_db, {**cloud, "NBAPROPS_WORKERS": "2"}, log)  # the coordinator's own queue workers
        for run in range(1, args.runs + 1):
            summary = predict(embedded_db, common, log)
            results["embedded"].append(float(summary["duration_s"]))  # type: ignore[arg-type]
            progress(f"run {run}: embedded {results['embedded'][-1]:.1f} s")
            for workers in (1, 2, 4):
                pool = [nbaprops(["worker", "--json"], cloud, log) for _ in range(workers)]
                summary = predict(cloud_db, cloud, log)
                for w in pool:  # SIGTERM: a worker finishes its chunk and stops pulling
                    w.send_signal(signal.SIGTERM)
                    w.communicate(timeout=600)
                counts = summary["requests"]
                assert isinstance(counts, dict)
                requests = sum(int(v) for v in counts.values())
                results[str(workers)].append(float(summary["duration_s"]))  # type: ignore[arg-type]
                progress(f"run {run}: cloud with {workers} worker(s) {results[str(workers)][-1]:.1f} s")
    median = {k: statistics.median(v) for k, v in results.items()}
    for key, values in results.items():
        print(f"{key:>9}: median {median[key]:.2f} s over {values}")
    overhead_ms = (median["1"] - median["embedded"]) / max(requests, 1) * 1000
    print(f"requests per batch: {requests}; goal cloud_slate_s <= {GOAL_S:.0f}")
    print(
        f"cloud_slate_s={median['1']:.2f} cloud_2w_s={median['2']:.2f} cloud_4w_s={median['4']:.2f} "
        f"embedded_s={median['embedded']:.2f} overhead_per_request_ms={overhead_ms:.1f}"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
