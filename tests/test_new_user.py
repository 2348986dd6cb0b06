"""What a new user met in the first minutes (issue 6), through the CLI on real database files.

Each test names the item it covers; each failed on the code before the fix (the failure is in its docstring).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.conftest import REPO, SHARED_DATA
from tests.ingest.csvfiles import write_csv
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.storage import open_storage

runner = CliRunner()
LINE_FIELDS = ["game_date", "player_name", "market", "line", "bookmaker", "over_price", "under_price", "team"]


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def nbaprops(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The installed command in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "nbaprops.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


@pytest.mark.parametrize("team", ["BOS", "Boston Celtics"])
def test_lines_with_the_documented_team_column_are_ingested(db_path: Path, tmp_path: Path, team: str) -> None:
    """Item 1. Before: DuckDB traceback "More than one row returned by a subquery" (the file's ``team`` column was
    captured by the team-resolution subquery)."""
    path = write_csv(
        tmp_path / "t.csv",
        [
            {
                "game_date": "2025-02-23",
                "player_name": "Jayson Tatum",
                "market": "points",
                "line": "27.5",
                "bookmaker": "DraftKings",
                "over_price": "-110",
                "under_price": "-110",
                "team": team,
            }
        ],
    )
    code, stdout, stderr = run("ingest", "lines", str(path), "--db", str(db_path), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["rows_added"] == 1
    with open_storage(db_path) as storage:
        assert storage.fetchall("SELECT team, opponent FROM prop_lines") == [("BOS", None)]


def test_ingest_boxscores_works_as_the_first_command_on_a_new_database(tmp_path: Path) -> None:
    """Item 2. Before: ``Catalog Error: Existing object "__box_in_0" is of type View`` (the shipped seasons loaded
    through the same temporary name first); the second run succeeded."""
    source = SHARED_DATA / "nba-boxscores" / "player_logs_2024-25.csv"
    if not source.exists():
        pytest.skip(f"shared data not found: {source}")
    head = tmp_path / "few.csv"
    head.write_text("".join(source.open().readlines()[:40]))
    db = tmp_path / "fresh.duckdb"
    proc = nbaprops("ingest", "boxscores", str(head), "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows_read"] == 39
    assert f"creating a new database at {db}" in proc.stderr  # issue 18 item 8: before, nothing said so


@pytest.mark.parametrize(
    "command",
    [["predict", "--date", "2025-07-01"], ["ingest", "schedule", "sched.csv"], ["serve", "--port", "0"]],
)
def test_a_mistyped_db_folder_is_refused_and_nothing_is_created(tmp_path: Path, command: list[str]) -> None:
    """Issue 18 item 8. Before: ``--db typo/dir/nb.duckdb`` created the folders, loaded the 252,621 shipped box
    scores into a new store and went on (``predict`` trained models there; ``serve`` served it)."""
    write_csv(tmp_path / "sched.csv", [{"game_date": "2025-07-01", "home_team": "BOS", "away_team": "NYK"}])
    db = tmp_path / "typo" / "dir" / "nb.duckdb"
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in command]
    code, stdout, stderr = run(*args, "--db", str(db))
    assert (code, stdout) == (1, ""), stderr
    assert stderr == (
        f"Error: no folder {db.parent} for a new database at {db}; create the folder first, or fix --db "
        "(NBAPROPS_DB_PATH)\n"
    )
    assert not (tmp_path / "typo").exists()


def test_a_line_never_shrinks_the_slate_and_its_player_is_predicted(db_path: Path, tmp_path: Path) -> None:
    """Item 3 (and item 1 through ``predict --lines``). Before: one Gilgeous-Alexander line made his game the only
    game of 2025-02-23, and he was skipped ``no_game`` although OKC@MIN was played."""
    lines = write_csv(
        tmp_path / "s.csv",
        [
            {
                "game_date": "2025-02-23",
                "player_name": "Shai Gilgeous-Alexander",
                "market": "points",
                "line": "32.5",
                "bookmaker": "FanDuel",
                "over_price": "-115",
                "under_price": "-105",
                "team": "OKC",
            }
        ],
    )
    code, stdout, stderr = run(
        "predict",
        "--date",
        "2025-02-23",
        "--lines",
        str(lines),
        "--systems",
        "moving_average",
        "--train-days",
        "60",
        "--db",
        str(db_path),
        "--json",
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    with open_storage(db_path) as storage:
        played = storage.scalar(
            "SELECT count(DISTINCT game_id) FROM box_scores WHERE game_date = '2025-02-23'"
        )
        sga = storage.fetchone(
            "SELECT state, line_value FROM prediction_requests r JOIN player_prop_predictions p USING (batch_id, "
            "player_lookup) WHERE r.batch_id = ? AND r.player_lookup LIKE 'shai%'",
            [summary["batch_id"]],
        )
    assert summary["games"] == played > 1
    # What the --lines file brought is in the JSON too (issue 18.10: it was absent)
    assert summary["lines_ingested"]["rows_added"] == 1 and summary["lines_ingested"]["unmatched"] == []
    assert sga == ("done", 32.5)


def test_a_stale_model_is_retrained_and_the_output_says_so(db_path: Path) -> None:
    """Item 4 (and item 5). Before: the artifact trained through 2024-03-16 predicted 2025-03-09 in silence, and
    ``batches``/``status`` showed the oldest batch first."""
    db = str(db_path)
    first = run(
        "predict",
        "--date",
        "2025-01-10",
        "--systems",
        "moving_average",
        "--train-days",
        "60",
        "--db",
        db,
        "--json",
    )
    assert first[0] == 0, first[2]
    code, stdout, stderr = run(
        "predict",
        "--date",
        "2025-01-20",
        "--systems",
        "moving_average",
        "--train-days",
        "60",
        "--db",
        db,
        "--json",
    )
    assert code == 0, stderr
    second = json.loads(stdout)
    assert "trained through 2025-01-10, 10 days before 2025-01-20" in stderr
    assert second["models"]["points"]["trained_through"] == "2025-01-20"
    assert second["models"]["points"]["trained_now"] is True
    code, stdout, stderr = run(
        "predict", "--date", "2025-01-24", "--systems", "moving_average", "--db", db, "--json"
    )
    third = json.loads(stdout)
    assert third["models"]["points"] | {"path": None, "no_bets": None} == {
        "path": None,
        "train_start": "2024-11-21",
        "trained_through": "2025-01-20",
        "age_days": 4,
        "trained_now": False,
        "no_bets": None,
    }
    assert "training" not in stderr

    code, stdout, _ = run("batches", "--db", db, "--json")
    dates = [b["game_date"] for b in json.loads(stdout)["batches"]]
    assert dates == ["2025-01-24", "2025-01-20", "2025-01-10"]
    code, stdout, _ = run("status", "--db", db, "--json")
    assert json.loads(stdout)["batch_id"] == third["batch_id"]


@pytest.mark.parametrize("command", [["status"], ["batches"], ["predictions", "--date", "2025-02-12"]])
def test_read_commands_refuse_a_missing_database_and_create_nothing(
    tmp_path: Path, command: list[str]
) -> None:
    """Item 6. Before: a mistyped --db silently created an empty store and answered from it."""
    db = tmp_path / "typo" / "nbaprop.duckdb"
    code, _, stderr = run(*command, "--db", str(db))
    assert code == 1
    assert stderr.startswith(f"Error: no database at {db}")
    assert not db.exists() and not db.parent.exists()


@pytest.mark.parametrize("day", ["2024-07-15", "2031-01-01"])
def test_a_date_without_games_stores_and_trains_nothing(db_path: Path, tmp_path: Path, day: str) -> None:
    """Item 7. Before: 2024-07-15 trained models and stored an empty "complete" batch (exit 0); 2031-01-01
    reported a training error."""
    artifacts = tmp_path / "artifacts"
    code, _, stderr = run(
        "predict", "--date", day, "--db", str(db_path), env={"NBAPROPS_DATA_DIR": str(artifacts)}
    )
    assert code == 1
    assert f"no games on {day} (no schedule, lines or box scores for it)" in stderr
    assert not artifacts.exists()
    with open_storage(db_path) as storage:
        assert storage.scalar("SELECT count(*) FROM prediction_batches") == 0


def test_opening_night_without_recent_players_names_the_setting(db_path: Path, tmp_path: Path) -> None:
    """Item 7, second half: a schedule but nobody active in ``recent_days`` says which setting to change."""
    sched = write_csv(
        tmp_path / "opening.csv", [{"game_date": "2025-10-21", "home_team": "OKC", "away_team": "HOU"}]
    )
    assert run("ingest", "schedule", str(sched), "--db", str(db_path))[0] == 0
    code, _, stderr = run("predict", "--date", "2025-10-21", "--db", str(db_path))
    assert code == 1 and "raise recent_days" in stderr and "NBAPROPS_RECENT_DAYS" in stderr


def _as_from_a_terminal() -> None:
    """In the child before exec: SIGINT as a terminal's command gets it (default, unblocked), whatever the test
    process inherited or set — an ignored SIGINT is inherited across exec, and Python then never raises
    KeyboardInterrupt (the full suite once ran this child so, and it finished its batch with exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


_SLATE = ["predict", "--date", "2025-02-12", "--systems", "moving_average", "--train-days", "60"]


@pytest.fixture(scope="module")
def trained_slate(
    loaded_db_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str], float]:
    """A database whose 2025-02-12 models are trained (shared artifacts folder), the environment that runs the
    slate in chunks of 16, and how long the batch ran from its ``batch …`` line to its summary (the span Ctrl-C
    is tried in)."""
    folder = tmp_path_factory.mktemp("slate")
    seed = folder / "seed.duckdb"
    shutil.copyfile(loaded_db_file, seed)
    env = {**os.environ, "NBAPROPS_CHUNK_SIZE": "16", "NBAPROPS_DATA_DIR": str(folder / "artifacts")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbaprops.cli", *_SLATE, "--db", str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stderr is not None
    assert proc.stderr is not None and proc.stdout is not None
    while (line := proc.stderr.readline()) and " requests for " not in line:
        pass
    started = time.monotonic()
    proc.stdout.readline()  # the summary: the batch has ended
    span = time.monotonic() - started
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0 and line, stderr
    return seed, env, span


def _interrupt_at(
    seed: Path, env: dict[str, str], folder: Path, delay: float
) -> tuple[int | None, list[str]]:
    """One try: the slate on a copy of ``seed``, Ctrl-C ``delay`` s after its ``batch …`` line, then the same
    command again. Returns the requests the Ctrl-C left open (None: the run ended before the moment) and what
    went wrong (nothing: it exited 130 with one line, and the rerun resumed and completed the batch without a
    failed request)."""
    folder.mkdir()
    db = folder / "nbaprops.duckdb"
    shutil.copyfile(seed, db)
    args = [sys.executable, "-m", "nbaprops.cli", *_SLATE, "--db", str(db)]
    proc = subprocess.Popen(
        [*args, "--force"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        preexec_fn=_as_from_a_terminal,
    )
    assert proc.stderr is not None
    while (line := proc.stderr.readline()) and " requests for " not in line:
        pass
    time.sleep(delay)
    if proc.poll() is not None:
        proc.communicate()
        return None, []
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    batch_id = line.split()[1].rstrip(":")
    if proc.returncode == 0 and f"Batch {batch_id}" in stdout and "complete" in stdout:
        return None, []  # the Ctrl-C came after the summary: the command had done its work
    problems = []
    with open_storage(db, read_only=True) as storage:
        left_open = storage.scalar(
            "SELECT count(*) FROM prediction_requests WHERE batch_id = ? AND state IN ('pending', 'leased')",
            [batch_id],
        )
        batch_state = storage.scalar("SELECT state FROM prediction_batches WHERE batch_id = ?", [batch_id])
    # A Ctrl-C after consolidation committed, before the summary printed: the batch finished, and the one line
    # says so instead of offering a resume (a rerun then makes a new batch of the same slate).
    finished = batch_state in ("complete", "partial")
    said = (
        f"interrupted after batch {batch_id} finished ({batch_state}); its predictions are stored"
        if finished
        else f"interrupted; run the same command to resume batch {batch_id}"
    )
    if proc.returncode != 130 or stderr.strip().splitlines() != [said]:
        problems.append(f"Ctrl-C {delay:.2f} s in: exit {proc.returncode}, stderr {stderr[-600:]!r}")
    rerun = subprocess.run([*args, "--json"], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    if rerun.returncode != 0:
        return left_open, [
            *problems,
            f"rerun after {delay:.2f} s: exit {rerun.returncode}, {rerun.stderr[-600:]!r}",
        ]
    summary = json.loads(rerun.stdout)
    got = (summary["batch_id"], summary["resumed"], summary["state"], summary["requests"]["failed"])
    # A Ctrl-C after the last request ended (consolidation, the summary) leaves a finished batch: the rerun
    # returns it as it stands ("resumed": false).
    if finished:  # nothing to resume: the rerun predicts the slate again, in a batch of its own
        expected_ok = got[0] != batch_id and got[1:] == (False, "complete", 0)
    else:
        expected_ok = got == (batch_id, True, "complete", 0) or (
            left_open == 0 and got == (batch_id, False, "complete", 0)
        )
    if not expected_ok:
        problems.append(f"rerun after {delay:.2f} s: (batch, resumed, state, failed) = {got}")
    return left_open, problems


def test_ctrl_c_at_any_moment_of_a_run_exits_130_in_one_line_and_the_rerun_resumes(
    trained_slate: tuple[Path, dict[str, str], float], tmp_path: Path
) -> None:
    """Issue 18 item 3: Ctrl-C at moments spread over a batch's run (2 at a time), from its ``batch …`` line to
    its end. Each exits 130 with one line, and the same command resumes that batch and completes it with no
    request failed. Before: 10 of 11 tries of the issue's command crashed (``Error: internal error:
    ResourceInUseException … connection is busy`` then ``terminate called …``, exit -6: the CLI closed the
    database while a worker thread still ran a query; DuckDB also failed the worker's chunk with ``INTERRUPT
    Error``). 4 moments by default; NBAPROPS_HEAVY=1 tries 20. (It replaces issue 6's single Ctrl-C test, items 9
    and 10: ``nanobind: leaked`` lines, and a rerun that said ``"resumed": false``.)"""
    seed, env, span = trained_slate
    moments = 20 if os.environ.get("NBAPROPS_HEAVY") == "1" else 4
    delays = [span * 0.8 * k / (moments - 1) for k in range(moments)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(lambda k: _interrupt_at(seed, env, tmp_path / f"m{k}", delays[k]), range(moments))
        )
    assert [p for _, problems in results for p in problems] == []
    left_open = [n for n, _ in results]
    # The span was timed once, and the machine's load varies: a late moment may fall after a run's end (nothing
    # to interrupt); most must fall inside, and some must stop the workers part-way.
    assert left_open.count(None) <= moments // 2, left_open
    assert any(n for n in left_open), left_open


@pytest.mark.parametrize(
    ("args", "kind", "message"),
    [
        (["predict", "--date", "2025-02-30"], "InputError", "is not a date"),
        (
            ["predictions", "--date", "2025-02-12", "--market", "blocks"],
            "InputError",
            "unknown market(s) blocks; choose from points, rebounds, assists, threes, pra",
        ),
        (
            ["predictions", "--date", "2025-02-12", "--system", "oracle"],
            "InputError",
            "unknown system(s) oracle; choose from moving_average, matchup, similarity, gbm, ensemble",
        ),
        (["status", "nope"], "UnknownBatchError", "no batch 'nope'"),
    ],
)
def test_json_errors_are_one_json_object(db_path: Path, args: list[str], kind: str, message: str) -> None:
    """Items 11 and 12. Before: with --json an error was plain text, and ``--market blocks`` exited 0."""
    code, stdout, stderr = run(*args, "--db", str(db_path), "--json")
    assert code == 1
    error = json.loads(stdout)
    assert error["kind"] == kind and message in error["error"]
    code, stdout, stderr = run(*args, "--db", str(db_path))
    assert code == 1 and stderr.startswith("Error: ") and message in stderr and stdout == ""


@pytest.mark.parametrize("as_json", [False, True])
def test_an_unexpected_error_is_one_line_exit_2_and_debug_reraises(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    """The error boundary (issue 12): an unexpected error prints ``Error: internal error: …`` and exits 2, never a
    traceback; with --debug it propagates. Mutation tried: dropping the ``except Exception`` branch → traceback."""
    import typer

    from nbaprops.cli import boundary

    with pytest.raises(typer.Exit) as stopped, boundary.errors(as_json):
        raise ZeroDivisionError("boom")
    assert stopped.value.exit_code == 2
    captured = capsys.readouterr()
    if as_json:
        assert json.loads(captured.out) == {
            "error": "internal error: ZeroDivisionError: boom (rerun with --debug for the traceback)",
            "kind": "InternalError",
        }
    else:
        assert captured.err.startswith("Error: internal error: ZeroDivisionError: boom (rerun with --debug")
    boundary.state["debug"] = True
    try:
        with pytest.raises(ZeroDivisionError), boundary.errors(as_json):
            raise ZeroDivisionError("boom")
    finally:
        boundary.state["debug"] = False


def test_the_board_is_readable_sorted_by_expected_value(db_path: Path, pra_lines: dict[str, Path]) -> None:
    """Frictions: ``predictions`` printed thousands of wrapped rows; now a table sorted by EV with --bets and
    --limit, while --csv/--json keep every column."""
    db = str(db_path)
    code, stdout, stderr = run(
        "predict",
        "--date",
        "2025-01-12",
        "--markets",
        "pra",
        "--systems",
        "moving_average",
        "--train-days",
        "60",
        "--lines",
        str(pra_lines["2024-25"]),
        "--db",
        db,
        "--json",
    )
    assert code == 0, stderr
    assert (
        "pra moving_average: no bets — no relation between the model's edge and the outcome"
        in stderr + stdout
        or json.loads(stdout)["models"]["pra"]["no_bets"]["moving_average"].startswith("no relation")
    )
    code, stdout, _ = run("predictions", "--date", "2025-01-12", "--db", db, "--json")
    rows = json.loads(stdout)["predictions"]
    # No bet (below), so no EV to sort by (issue 18 item 5: PASS rows showed one): highest prediction first.
    assert all(r["expected_value"] is None for r in rows)
    values = [r["predicted_value"] for r in rows if r["predicted_value"] is not None]
    assert len(values) > 50 and values == sorted(values, reverse=True)
    assert len(rows[0]) > 30  # every column of the main table
    # The date: before, 53 of 92 UNDERs pointed against the prediction; now the edge of these held-out
    # weeks shows no relation to the outcome, so --bets is empty (and predict said why).
    code, stdout, _ = run("predictions", "--date", "2025-01-12", "--db", db, "--json", "--bets")
    assert json.loads(stdout)["predictions"] == []
    assert {r["calibration_method"] for r in rows if r["line_value"] is not None} == {"no_signal"}
    code, stdout, _ = run("predictions", "--date", "2025-01-12", "--db", db, "--limit", "5")
    assert code == 0
    assert "player" in stdout and "P(over)" in stdout and "EV" in stdout
    assert len(stdout.splitlines()) < 25 and "more: raise --limit" in stdout


def test_a_partial_batch_summary_is_short(db_path: Path) -> None:
    """Frictions: ``status`` of a partial batch printed ~600 lines of JSON in one table cell."""
    db = str(db_path)
    code, stdout, _ = run(
        "predict",
        "--date",
        "2025-02-12",
        "--systems",
        "moving_average",
        "--train-days",
        "60",
        "--db",
        db,
        "--json",
    )
    batch = json.loads(stdout)
    assert code == 0 and batch["missing"]
    code, stdout, _ = run("status", batch["batch_id"], "--db", db)
    assert code == 0
    assert len(stdout.splitlines()) < 40
    assert f"{len(batch['missing'])} player(s) not predicted" in stdout


@pytest.mark.parametrize("command", [["predict"], ["predictions"], ["train"], ["backtest"], ["batches"]])
def test_help_shows_plain_flags_and_defaults(command: list[str]) -> None:
    """Frictions: --help showed ``<bool>`` on flags and no defaults."""
    code, stdout, _ = run(*command, "--help")
    assert code == 0 and "<bool>" not in stdout and "[default: " in stdout


def test_market_and_markets_are_accepted_alike_and_version_prints() -> None:
    code, stdout, _ = run("predict", "--help")
    assert "--markets, --market" in stdout
    code, stdout, _ = run("--version")
    assert code == 0 and stdout.startswith("nbaprops ")


HOLD_READ_ONLY = (
    "import sys, time, duckdb\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "print('held', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


def hold_for_reading(db: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process reading the file (as a second terminal's `status` does for a moment)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_READ_ONLY, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_command_waits_for_a_brief_read_instead_of_failing(tmp_path: Path) -> None:
    """Before: a command that writes, started while another terminal's read held the file for a moment, failed
    with "database busy" (CI saw `predict` fail that way while a `batches` poll opened the file)."""
    db = tmp_path / "nbaprops.duckdb"
    open_storage(db).close()
    holder = hold_for_reading(db, 1.5)
    started = time.monotonic()
    done = nbaprops("cleanup-staging", "--db", str(db), "--json")
    waited = time.monotonic() - started
    holder.wait(10)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dropped"] == []
    assert holder.returncode == 0 and waited > 0.5  # it did meet the lock, and waited for it

    holder = hold_for_reading(db, 30)
    try:
        refused = nbaprops(
            "cleanup-staging", "--db", str(db), env={"NBAPROPS_LOCK_WAIT_SECONDS": "0.5"}, timeout=20
        )
    finally:
        holder.kill()
        holder.wait(10)
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: the database file is held by another process"), refused.stderr


def test_status_while_the_holder_trains_says_what_it_does(db_path: Path, tmp_path: Path) -> None:
    """Issue 18 item 11: ``status`` from a second terminal while ``predict`` trains its first models. Before:
    ``Error: no batch yet; run `nbaprops predict --date YYYY-MM-DD` `` (exit 1), as if nothing were running.
    Since issue 19 the batch starts before its models train (pipeline/run.py), so status shows it, all pending,
    with what the holder is doing."""
    env = {**os.environ, "NBAPROPS_DATA_DIR": str(tmp_path / "artifacts")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nbaprops.cli",
            "predict",
            "--date",
            "2025-02-12",
            "--markets",
            "points,pra",
            "--train-days",
            "365",
            "--db",
            str(db_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stderr is not None
        while (line := proc.stderr.readline()) and "training on" not in line:
            pass
        assert "training on" in line, "predict did not train"
        code, stdout, stderr = run("status", "--db", str(db_path))
        as_json = json.loads(run("status", "--db", str(db_path), "--json")[1])
    finally:
        proc.kill()
        proc.wait()
    assert code == 0, stderr
    assert stdout.startswith("Batch 20250212_") and "pending" in stdout
    assert f"nbaprops predict (pid {proc.pid}) is training models for 2025-02-12, started at 20" in stdout
    assert as_json["batch_id"].startswith("20250212_") and as_json["state"] == "running"
    assert as_json["requests"]["done"] == 0
    assert (
        as_json["holder"]["doing"] == "training models for 2025-02-12"
        and as_json["holder"]["pid"] == proc.pid
    )


def test_a_reader_that_stops_early_ends_the_command_quietly(db_path: Path) -> None:
    """``nbaprops picks --csv | head`` printed "Error: internal error: BrokenPipeError" (exit 2): a reader that
    closes the pipe is no error. The command now ends quietly with 141 (128 + SIGPIPE), as a Unix tool does."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbaprops.cli", "batches", "--db", str(db_path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command, still starting, writes a byte
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, stderr
    assert stderr == ""
