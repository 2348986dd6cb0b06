"""The command line on real database files: happy paths with --json, and bad arguments."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.storage import open_storage

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_predict_then_operate_the_batch(db_path: Path) -> None:
    db = str(db_path)
    code, stdout, stderr = run(
        "predict", "--date", "2025-02-12", "--systems", "moving_average", "--db", db, "--json"
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["state"] == "complete" and summary["staging_tables_left"] == 0
    assert set(summary["requests"]) == {"pending", "leased", "done", "skipped", "failed"}
    assert summary["active_predictions"] == summary["requests"]["done"] > 400
    assert {"predictions_staged", "drift", "duration_s", "batch_id", "game_date"} <= set(summary)
    assert "training" in stderr or "model" in stderr.lower()  # first run trains, and says so

    code, stdout, _ = run("status", summary["batch_id"], "--db", db, "--json")
    assert code == 0 and json.loads(stdout)["state"] == "complete"
    code, stdout, _ = run("batches", "--date", "2025-02-12", "--db", db, "--json")
    assert code == 0 and [b["batch_id"] for b in json.loads(stdout)["batches"]] == [summary["batch_id"]]
    code, stdout, _ = run(
        "predictions", "--date", "2025-02-12", "--system", "moving_average", "--db", db, "--csv"
    )
    table = list(csv.DictReader(io.StringIO(stdout)))
    assert code == 0 and len(table) == summary["active_predictions"]
    assert {"prediction_id", "recommendation", "model_version", "feature_version", "is_active"} <= set(
        table[0]
    )
    # Rerunning the date resumes nothing (the batch is finished) and --force supersedes it.
    code, stdout, _ = run(
        "predict", "--date", "2025-02-12", "--systems", "moving_average", "--db", db, "--json", "--force"
    )
    again = json.loads(stdout)
    assert code == 0 and again["batch_id"] != summary["batch_id"]
    assert again["active_predictions"] == summary["active_predictions"]
    code, stdout, _ = run("consolidate", summary["batch_id"], "--db", db, "--json")
    assert code == 0 and json.loads(stdout)["active_predictions"] == 0  # superseded by the forced batch


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["check-stalled"],
            {
                "reclaimed": 0,
                "failed": 0,
                "released_from_dead_processes": 0,
                "finished_batches": [],
                "stalled_leases_left": 0,
            },
        ),
        (
            ["cleanup-staging", "--older-than-hours", "0"],
            {
                "dropped": ["staging_predictions_orphan_1"],
                "dropped_count": 1,
                "finished_batches": [],
                "kept": [],
            },
        ),
    ],
    ids=["check-stalled", "cleanup-staging"],
)
def test_operations_report_what_they_did(db_path: Path, args: list[str], expected: dict[str, object]) -> None:
    with open_storage(db_path) as storage:
        storage.execute("CREATE TABLE staging_predictions_orphan_1 (x INTEGER)")  # no batch owns it
    code, stdout, stderr = run(*args, "--db", str(db_path), "--json")
    assert code == 0, stderr
    assert json.loads(stdout) == expected


def test_cleanup_staging_that_finishes_a_batch_prints_its_table(db_path: Path) -> None:
    from tests.pipeline.helpers import start_slate

    from nbaprops.config import Settings
    from nbaprops.pipeline import Coordinator

    with open_storage(db_path) as storage:
        batch_id = start_slate(Coordinator(storage, Settings(db_path=db_path)), teams=1)
    code, stdout, stderr = run("cleanup-staging", "--older-than-hours", "0", "--db", str(db_path))
    assert code == 0, stderr
    assert "finished_batches" in stdout and batch_id in stdout  # the ids the janitor reports, not dicts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--date", "2025-02-30"], "is not a date"),
        (["predict", "--date", "2025-02-12", "--markets", "steals"], "unknown market"),
        (["predict", "--date", "2025-02-12", "--systems", "oracle"], "unknown system"),
        (["batches", "--date", "yesterday"], "is not a date"),
        (["ingest", "lines", "/no/such/file.csv"], "no such file"),
        (["backtest", "--market", "pra"], "--season or --from"),
        (["backtest", "--season", "1999-00"], "no box scores for season"),
        (["backtest", "--from", "2025-01-10", "--to", "2025-01-01"], "before --from"),
        (["status", "nope"], "nope"),
    ],
)
def test_bad_arguments_fail_with_a_clear_error(args: list[str], message: str, db_path: Path) -> None:
    code, stdout, stderr = run(*args, "--db", str(db_path))
    assert code == 1, stdout + stderr
    assert stderr.startswith("Error:") and message in stderr


def database_fingerprint(db_path: Path) -> dict[str, tuple[object, ...]]:
    """Every table of the file: its columns, row count and an order-independent hash of its rows."""
    with open_storage(db_path, read_only=True) as storage:
        tables = [
            row[0]
            for row in storage.fetchall(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
            )
        ]
        return {
            table: (
                tuple(storage.table_columns(table).items()),
                *storage.fetchall(f'SELECT count(*), sum(hash(t)::HUGEINT) FROM "{table}" t')[0],
            )
            for table in tables
        }


def test_bad_lines_file_changes_nothing(db_path: Path, tmp_path: Path) -> None:
    """A valid file followed by a bad one: the command fails and no table of the file changes.

    Mutations tried in ``ingest_lines``, each failing here (the old check of the predictions alone passed):
    an ``ingest_log`` row written before validating; a ``player_aliases`` row written once the first file
    passed; a column added to ``prop_lines`` before validating.
    """
    header = "game_date,player_name,market,line,bookmaker,over_price,under_price\n"
    good = tmp_path / "good_lines.csv"
    good.write_text(header + "2025-02-12,Stephen Curry,points,27.5,FanDuel,-110,-110\n")
    bad = tmp_path / "lines.csv"
    bad.write_text(
        header + "2025-02-12,LeBron James,points,25.5,FanDuel,-110,-110\n"
        "2025-02-12,Anthony Davis,points,abc,FanDuel,-110,-110\n"
    )
    before = database_fingerprint(db_path)
    assert {"prop_lines", "ingest_log", "player_aliases", "teams", "box_scores"} <= set(before)
    code, _, stderr = run("ingest", "lines", str(good), str(bad), "--db", str(db_path))
    assert code == 1 and "lines.csv" in stderr and "line" in stderr
    assert database_fingerprint(db_path) == before
    # The fingerprint sees an ingest: the good file alone changes it.
    code, _, stderr = run("ingest", "lines", str(good), "--db", str(db_path))
    assert code == 0, stderr
    after = database_fingerprint(db_path)
    assert {t for t in before if after[t] != before[t]} == {"prop_lines", "ingest_log"}


@pytest.mark.parametrize(
    ("args", "blocked", "expected"),
    [
        (["serve"], "nbaprops.service.server", "pip install 'nbaprops[service]'"),
        (
            ["fetch", "schedule", "--season", "2024-25"],
            "nba_api.stats.endpoints",
            "pip install 'nbaprops[live]'",
        ),
    ],
)
def test_install_hints_keep_the_extras_name(
    args: list[str], blocked: str, expected: str, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 item 4: on the core install (the extra's modules absent) the hint names the extra. Before: Rich
    read ``[service]`` / ``[live]`` as markup and printed ``pip install 'nbaprops'``."""
    monkeypatch.setitem(sys.modules, blocked, None)  # what `import` meets when the extra is not installed
    code, stdout, stderr = run(*args, "--db", str(db_path))
    assert code == 1, stdout + stderr
    assert expected in stderr
    assert stderr.startswith("Error: ") and len(stderr.strip().splitlines()) == 1


def test_user_text_is_never_rich_markup(db_path: Path, tmp_path: Path) -> None:
    """Issue 18 item 4: a file name is printed as given. Before: ``[bold]x[/bold].csv`` came out ``x.csv`` (Rich
    markup), and ``[/nope]`` made Rich raise a MarkupError that the CLI reported as an internal error."""
    for name in ("[bold]x[/bold].csv", "a[/nope]b.csv"):
        missing = tmp_path / name
        code, stdout, stderr = run("ingest", "lines", str(missing), "--db", str(db_path))
        assert (code, stdout) == (1, ""), stderr
        assert stderr == f"Error: no such file: {missing}\n"


def test_batches_fit_80_columns_with_whole_ids(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18 item 12: ``nbaprops batches`` in an 80-column terminal. Before: every column was cut
    (``batch_…``, ``2025-0…``, ``compl…``), so no id could be copied from it."""
    from datetime import UTC, date, datetime

    from nbaprops.cli import render
    from nbaprops.clock import SystemClock
    from nbaprops.pipeline import ledger
    from nbaprops.storage.seams import PlayerRequest

    request = PlayerRequest("jaysontatum", "Jayson Tatum", 1628369, "BOS", "NYK", "0022400001", True)
    with open_storage(db_path) as storage:
        ids = [
            ledger.create_batch(
                storage,
                game_date=date(2025, 2, 12),
                requests=[request],
                markets=["points"],
                systems=["moving_average"],
                as_of=datetime(2025, 2, 12, 18, tzinfo=UTC),
                deadline_minutes=30,
                clock=SystemClock(),
                kind=kind,
            )
            for kind in ("daily", "line_update")
        ]
    monkeypatch.setattr(render.out, "width", 80)
    code, stdout, stderr = run("batches", "--db", str(db_path))
    assert code == 0, stderr
    assert max(len(line) for line in stdout.splitlines()) <= 80 and "…" not in stdout
    rows = [line.split() for line in stdout.splitlines() if line.startswith("2025")]
    assert [r[:3] for r in rows] == [[ids[1], "line_update", "running"], [ids[0], "daily", "running"]]
    assert rows[0][3:7] == ["0", "0", "0", "1"]  # done, skip, fail, open
    code, stdout, _ = run("batches", "--db", str(db_path), "--json")
    assert [b["batch_id"] for b in json.loads(stdout)["batches"]] == ids[::-1]


def test_ingest_file_help_names_the_formats_every_kind_reads() -> None:
    """Issue 18 item 16: ``ingest injuries --help`` said "CSV or Parquet files" where the command list said "CSV or
    JSON"; every kind reads CSV, Parquet and JSON by the file's extension, and now each help says so."""
    for kind in ("boxscores", "lines", "schedule", "injuries"):
        code, stdout, _ = run("ingest", kind, "--help")
        assert code == 0 and "CSV, Parquet or JSON files" in " ".join(stdout.split()), kind
    assert "CSV or JSON" not in run("ingest", "--help")[1]


def test_backtest_prints_its_peak_memory(db_path: Path) -> None:
    """Issue 21: the backtest says its peak memory, in text and in --json (this process's own high-water mark,
    and its largest worker process's once the workers have ended)."""
    one_day = ("backtest", "--market", "points", "--from", "2025-02-11", "--to", "2025-02-11")
    options = ("--systems", "moving_average", "--train-days", "30", "--db", str(db_path))
    code, stdout, stderr = run(*one_day, *options, "--json")
    assert code == 0, stderr
    payload = json.loads(stdout)
    assert 50 < payload["peak_rss_mb"] < 100_000
    assert (payload["holdout_every"], payload["gbm_every"]) == (4, 2)  # the default cadence, said
    assert payload["peak_worker_rss_mb"] is None or payload["peak_worker_rss_mb"] > 10
    code, stdout, stderr = run(*one_day, *options)
    assert code == 0, stderr
    assert re.search(r"^peak memory: \d+ MB", stdout, re.MULTILINE), stdout


def test_backtest_says_how_often_it_refits_and_every_step_fits_as_the_batch_does(db_path: Path) -> None:
    """Issue 21 part 4: the backtest learns holdouts every 4 steps and fits gbm every 2 by default (faster, not
    what the live batch does; its payload says so, checked above), and --every-step runs it as the batch would."""
    one_day = ("backtest", "--market", "points", "--from", "2025-02-11", "--to", "2025-02-11")
    options = ("--systems", "moving_average", "--train-days", "30", "--db", str(db_path), "--json")
    code, stdout, stderr = run(*one_day, *options, "--every-step")  # the default: the peak memory test above
    assert code == 0, stderr
    payload = json.loads(stdout)
    assert (payload["holdout_every"], payload["gbm_every"]) == (1, 1)


def test_a_bare_report_name_lands_where_the_dashboard_lists_it_and_serve_takes_json(db_path: Path) -> None:
    """Issue 18 item 16. Before: README's ``--report report.html`` was written to the current folder, which the
    dashboard's ``/reports`` (the reports folder only) never lists; and ``serve --json`` was refused ("No such
    option: --json") though every command is documented to take it."""
    import signal
    import socket
    import subprocess
    import time
    import urllib.error
    import urllib.request

    code, stdout, stderr = run(
        *("backtest", "--market", "points", "--from", "2025-02-11", "--to", "2025-02-11"),
        *("--systems", "moving_average", "--train-days", "30", "--report", "one-day.html"),
        *("--db", str(db_path), "--json"),
    )
    assert code == 0, stderr
    assert Path(json.loads(stdout)["report"]) == db_path.parent / "reports" / "one-day.html"
    with socket.socket() as probe:  # a free port (with --port 0 the server would not say which one it got)
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "nbaprops.cli", "serve", "--port", port, "--db", str(db_path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = json.loads(server.stdout.readline())
        assert (ready["db"], ready["url"]) == (str(db_path), f"http://127.0.0.1:{port}/")
        deadline = time.monotonic() + 60
        while True:  # the line comes as the server starts listening
            try:
                with urllib.request.urlopen(f"{ready['url']}reports", timeout=30) as response:
                    assert "one-day.html" in response.read().decode()
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)


def test_the_cli_stays_a_thin_skin_small_files_short_commands() -> None:
    """Issue 19: the CLI only parses, calls one library function and renders: no file of cli/ over 500 lines, no
    command body (after its docstring) over 40. Before: one 2,051-line cli.py, predict's body 147 lines."""
    import ast
    import inspect

    import typer

    from nbaprops import cli

    folder = Path(cli.__file__).parent
    sizes = {f.name: len(f.read_text().splitlines()) for f in folder.glob("*.py")}
    assert sizes and max(sizes.values()) <= 500, sizes

    def callbacks(command: Any) -> list[Any]:
        if hasattr(command, "commands"):  # a group: its commands
            return [cb for sub in command.commands.values() for cb in callbacks(sub)]
        return [command.callback]

    lengths = {}
    for callback in callbacks(typer.main.get_command(cli.app)):
        function = inspect.unwrap(callback)
        node = ast.parse(inspect.getsource(function)).body[0]
        assert isinstance(node, ast.FunctionDef)
        body = node.body[1:] if ast.get_docstring(node) else node.body
        lengths[function.__name__] = node.end_lineno - body[0].lineno + 1  # type: ignore[operator]
    assert len(lengths) == 28 and max(lengths.values()) <= 40, lengths
