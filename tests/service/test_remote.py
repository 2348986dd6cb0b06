"""Reads while work runs: a CLI command on a database held by another nbaprops process reaches that process
and prints what it would have printed itself; only a foreign holder still gives the lock error."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.service.conftest import KEYS, REPO, SLATE, ServeProcess, copy_db, wait_batch, wait_for
from typer.testing import CliRunner

from nbaprops.cli import app
from nbaprops.config import Settings
from nbaprops.errors import UnknownBatchError
from nbaprops.holder import Endpoint, Holder, Holding, bind, endpoint_file
from nbaprops.holder import endpoint as holder_endpoint
from nbaprops.holder.record import private_group
from nbaprops.service.operations import OPERATIONS
from nbaprops.storage import open_storage
from nbaprops.storage.duckdb import DuckDBStorage

runner = CliRunner()


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def slow_env(artifacts: Path) -> dict[str, str]:
    """One worker claiming 8 requests at a time: a slate takes long enough to be watched."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        "NBAPROPS_DATA_DIR": str(artifacts),
        "NBAPROPS_SYSTEMS": "moving_average",
        "NBAPROPS_TRAIN_DAYS": "60",
        "NBAPROPS_CHUNK_SIZE": "8",
        "NBAPROPS_WORKERS": "1",
    }


def test_status_while_predict_runs_answers_every_time_with_monotone_progress(
    loaded_db_file: Path, artifacts: Path, tmp_path: Path
) -> None:
    db = str(copy_db(loaded_db_file, tmp_path))
    predict = subprocess.Popen(
        [sys.executable, "-m", "nbaprops.cli", "predict", "--date", SLATE, "--db", db, "--json"],
        env=slow_env(artifacts),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def a_batch() -> bool:
            assert predict.poll() is None, predict.communicate()  # predict must not have given up
            code, out, err = cli("batches", "--db", db, "--json")
            assert code == 0, err  # answered by the predict process from the start (no batch yet: empty)
            return bool(json.loads(out)["batches"])

        wait_for(a_batch, timeout=120, interval=0.2)
        seen: list[tuple[str, int, int]] = []
        while True:
            code, out, err = cli("status", "--db", db, "--json")
            assert code == 0, (out, err)
            summary = json.loads(out)
            counts = summary["requests"]
            seen.append(
                (
                    summary["state"],
                    counts["done"] + counts["skipped"] + counts["failed"],
                    sum(counts.values()),
                )
            )
            if summary["state"] != "running":
                break
            time.sleep(0.2)
        out, err = predict.communicate(timeout=120)
    finally:
        predict.kill()
    assert predict.returncode == 0, err
    assert json.loads(out)["state"] == "complete"
    ended = [e for _, e, _ in seen]
    assert ended == sorted(ended), seen
    assert ended[-1] == seen[-1][2] and seen[-1][0] == "complete"
    assert sum(1 for state, e, total in seen if state == "running" and 0 < e < total) >= 2, seen


READS = [
    ["status", "--json"],
    ["status"],
    ["batches", "--json"],
    ["batches"],
    ["predictions", "--date", SLATE, "--csv"],
    ["predictions", "--date", SLATE, "--json"],
    ["predictions", "--date", SLATE, "--limit", "5"],
    ["predictions", "--date", SLATE, "--offers", "--json"],
    ["ladder", "--date", SLATE, "--player", "Jayson Tatum", "--market", "points"],
    ["check-stalled", "--json"],
    ["status", "nope"],
]


@pytest.fixture(scope="module")
def served(
    loaded_db_file: Path, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """``nbaprops serve`` in its own process over a database holding the slate's batch (stopped by the last
    test of the module, which compares with local reads)."""
    server = ServeProcess(copy_db(loaded_db_file, tmp_path_factory.mktemp("served")), artifacts).start()
    try:
        with server.client() as client:
            wait_batch(client, client.post("/v1/batches", json={"game_date": SLATE}).json()["batch_id"])
        yield server
    finally:
        server.stop()


def test_serve_records_its_own_url_for_its_owner_and_refuses_a_wrong_token(served: ServeProcess) -> None:
    """Before: ``serve`` ran a second HTTP server (the standard library's) on another port for the record. Now
    the record names uvicorn's own URL, and the app answers the protocol with the same checks."""
    record = json.loads(endpoint_file(served.db).read_text())
    assert oct(endpoint_file(served.db).stat().st_mode & 0o777) == "0o600"
    assert record["url"] == served.url and record["pid"] == served.proc.pid  # type: ignore[union-attr]
    route = f"{record['url']}/_holder"
    for token in ("", "wrong", record["token"][:-1]):
        # an API key of the service does not replace the record's token
        response = httpx.post(
            f"{route}/status", json={}, headers={"X-Nbaprops-Token": token, "X-API-Key": KEYS[0]}
        )
        assert response.status_code == 403 and response.json()["kind"] == "Forbidden"
    ok = httpx.post(
        f"{route}/batches", json={"game_date": "2025-01-01"}, headers={"X-Nbaprops-Token": record["token"]}
    )
    assert ok.status_code == 200 and ok.json() == {"result": {"batches": []}}
    unknown = httpx.post(f"{route}/drop-everything", json={}, headers={"X-Nbaprops-Token": record["token"]})
    assert unknown.status_code == 404
    wrong_args = httpx.post(
        f"{route}/batches", json={"sql": "DROP TABLE x"}, headers={"X-Nbaprops-Token": record["token"]}
    )
    assert wrong_args.status_code == 400 and wrong_args.json()["kind"] == "InputError"
    assert "batch_records" not in wrong_args.text and "Traceback" not in wrong_args.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": "evil.example"},
    ],
)
def test_the_holder_route_refuses_other_origins_even_with_the_token(
    served: ServeProcess, headers: dict[str, str]
) -> None:
    """A page on another origin (or a rebound name) never reaches the operations, token or not."""
    record = json.loads(endpoint_file(served.db).read_text())
    response = httpx.post(
        f"{record['url']}/_holder/cleanup-staging",
        json={"dry_run": True},
        headers={"X-Nbaprops-Token": record["token"], **headers},
    )
    assert response.status_code in (400, 403) and "result" not in response.json()


def test_predict_on_a_served_database_runs_the_batch_in_the_server(served: ServeProcess) -> None:
    db = str(served.db)
    code, out, err = cli("predict", "--date", SLATE, "--systems", "moving_average", "--db", db, "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["state"] == "complete" and payload["active_predictions"] > 300
    assert {"games", "games_source", "lines_used", "models", "missing", "requests"} <= set(payload)
    with served.client() as client:
        detail = client.get(f"/v1/batches/{payload['batch_id']}").json()
    assert detail["runner"]["phase"] == "finished"  # it ran in the server, not here
    code, out, err = cli("predict", "--date", "2025-07-15", "--db", db)
    assert code == 1 and "no games on 2025-07-15" in err  # the server's error, as predict prints it
    code, _, err = cli("ingest", "schedule", db, "--db", db)  # not a read: a clear refusal naming the holder
    assert code == 1 and "held by `nbaprops serve`" in err and f"pid {served.proc.pid}" in err  # type: ignore[union-attr]


def test_an_error_in_the_server_reaches_the_cli_with_its_class_and_attributes(served: ServeProcess) -> None:
    """Before: the error was rebuilt with ``__new__`` from its message alone: ``batch_id`` was gone."""
    holder = Holder.read(served.db)
    assert holder is not None and holder.url == served.url and "status" in holder.commands
    with pytest.raises(UnknownBatchError) as raised:
        holder.call("status", {"batch_id": "nope"})
    assert raised.value.batch_id == "nope" and "no batch 'nope'" in str(raised.value)


def test_reads_through_the_server_print_what_they_print_locally(served: ServeProcess) -> None:
    db = str(served.db)
    remote = [cli(*args, "--db", db) for args in READS]
    served.stop()
    assert not endpoint_file(served.db).exists()
    local = [cli(*args, "--db", db) for args in READS]
    for args, here, there in zip(READS, local, remote, strict=True):
        assert here == there, args
    assert remote[-1][0] == 1 and "no batch 'nope'" in remote[-1][2]


def test_a_foreign_holder_still_gives_the_lock_error_with_its_pid(
    loaded_db_file: Path, tmp_path: Path
) -> None:
    db = copy_db(loaded_db_file, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(120)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        endpoint_file(db).write_text(
            json.dumps(
                {
                    "pid": holder.pid + 100000,
                    "url": "http://127.0.0.1:9",
                    "holder": "nbaprops predict",
                    "token": "stale",
                }
            )
        )
        for args in (["status"], ["batches"], ["predict", "--date", SLATE]):
            code, _, stderr = cli(*args, "--db", str(db), env={"NBAPROPS_LOCK_WAIT_SECONDS": "0.5"})
            assert code == 1 and "held by another process" in stderr and f"PID {holder.pid}" in stderr, stderr
    finally:
        holder.kill()
        holder.wait()
    code, out, _ = cli(
        "batches", "--db", str(db), "--json"
    )  # the stale record is ignored once the file is free
    assert code == 0 and json.loads(out) == {"batches": []}


@pytest.mark.parametrize("command", [["status"], ["batches"]])
def test_reads_of_a_missing_database_still_say_so(tmp_path: Path, command: list[str]) -> None:
    code, _, stderr = cli(*command, "--db", str(tmp_path / "none.duckdb"))
    assert code == 1 and "no database at" in stderr


# -- issue 17 finding 3: the endpoint record -------------------------------------------------------------------
def _holding(db: Path) -> tuple[DuckDBStorage, Endpoint]:
    """This process holds ``db`` and answers reads for it (other processes meet its lock)."""
    storage = open_storage(db)
    commands = bind(OPERATIONS, storage, Settings(db_path=db))
    return storage, Endpoint(Holding(db, holder="nbaprops predict", commands=commands)).start()


def test_the_record_is_never_written_through_a_name_planted_in_advance(db_path: Path, tmp_path: Path) -> None:
    """Before: the record went through ``.<db>.endpoint.json.<pid>.tmp`` opened without ``O_EXCL`` or
    ``O_NOFOLLOW``: a symlink planted at that name made the holder overwrite the file it pointed to with the
    token, and a file planted there (mode 666) became the record, readable by whoever planted it."""
    record = endpoint_file(db_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (db_path.parent / f".{record.name}.{os.getpid()}.tmp").symlink_to(victim)
    record.symlink_to(tmp_path / "other-victim.txt")
    storage, endpoint = _holding(db_path)
    try:
        assert victim.read_text() == "precious" and not (tmp_path / "other-victim.txt").exists()
        info = record.lstat()
        assert stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()
        assert stat.S_IMODE(info.st_mode) == 0o600
        holder = Holder.read(db_path)
        assert holder is not None and holder.token == endpoint.holding.token and holder.pid == os.getpid()
    finally:
        endpoint.close()
        storage.close()
    assert not record.exists() and victim.read_text() == "precious"


def test_no_record_where_other_users_can_write_and_the_other_terminal_is_told_why(
    db_path: Path,
) -> None:
    """Before: the record (and the token in it) was written next to the database whatever the folder, so in a
    world-writable folder another user could plant, swap or read it. Now the holder writes none there, and a
    second terminal's lock error says why no holder answers."""
    db_path.parent.chmod(0o777)
    try:
        storage, endpoint = _holding(db_path)
        try:
            assert not endpoint_file(db_path).exists()
            assert (
                endpoint.holding.refused is not None and "writable by other users" in endpoint.holding.refused
            )
            proc = subprocess.run(
                [sys.executable, "-m", "nbaprops.cli", "batches", "--db", str(db_path)],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "NBAPROPS_LOCK_WAIT_SECONDS": "0.2"},
            )
        finally:
            endpoint.close()
            storage.close()
    finally:
        db_path.parent.chmod(0o700)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("Error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "answers no reads for this database because its folder is writable by other users" in proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the folder to another group needs root")
def test_a_folder_writable_by_a_shared_group_is_refused_and_by_the_users_private_group_is_not(
    db_path: Path,
) -> None:
    """Before: the record was written in any folder. A group-writable folder is safe only when the group is
    the user's own (umask 002 systems make one per user); with any other group its members could swap it."""
    folder = db_path.parent
    folder.chmod(0o770)
    try:
        os.chown(folder, -1, 65534)  # nogroup: not this user's
        storage, endpoint = _holding(db_path)
        written = endpoint_file(db_path).exists()
        endpoint.close()
        storage.close()
        assert not written and endpoint.holding.refused is not None
        os.chown(folder, -1, os.getegid())
        if not private_group(os.getegid()):
            pytest.skip("this user's primary group has other members here")
        storage, endpoint = _holding(db_path)
        try:
            assert endpoint.holding.refused is None and Holder.read(db_path) is not None
        finally:
            endpoint.close()
            storage.close()
    finally:
        folder.chmod(0o700)


def test_a_record_that_is_not_this_users_private_file_is_not_trusted(db_path: Path) -> None:
    """Before: any file at ``<db>.endpoint.json`` naming a live pid was trusted, so a record planted by another
    user sent this user's commands (and their arguments) to the planter's server."""
    record = endpoint_file(db_path)
    record.write_text(
        json.dumps(
            {"pid": os.getpid(), "url": "http://127.0.0.1:9", "holder": "nbaprops predict", "token": "t"}
        )
    )
    record.chmod(0o644)
    assert Holder.read(db_path) is None  # readable by others: not one we wrote
    record.chmod(0o600)
    assert Holder.read(db_path) is not None  # the same file, private: trusted
    if os.geteuid() == 0:
        os.chown(record, 65534, 65534)  # another user's file
        assert Holder.read(db_path) is None


# -- issue 17 finding 4: idle connections ----------------------------------------------------------------------
def test_idle_connections_do_not_block_the_holders_answers(db_path: Path) -> None:
    """Before: four connections that sent nothing took the endpoint's four threads for ever, and `nbaprops
    batches` from another terminal hung until killed. Now 40 idle connections (past the connection cap, some
    with half a request) leave it answering at once."""
    storage, endpoint = _holding(db_path)
    port = int(str(endpoint.holding.url).rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
    try:
        for sock in idle[::2]:
            sock.sendall(b"POST /_holder/batches HTTP/1.0\r\nContent-Length: 99\r\n")
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "nbaprops.cli", "batches", "--db", str(db_path), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.monotonic() - started
    finally:
        for sock in idle:
            sock.close()
        endpoint.close()
        storage.close()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"batches": []}
    assert elapsed < 45, (
        elapsed
    )  # a cold CLI start (17 s seen at load 25 on 2 cores); it hung for ever before


def test_a_silent_connection_is_let_go(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: no socket timeout (``None``): a connection that never sent its request stayed open and held one
    of the four threads. The timeout is shortened here to keep the test fast."""
    assert holder_endpoint._Handler.timeout is not None and 0 < holder_endpoint._Handler.timeout <= 10
    monkeypatch.setattr(holder_endpoint._Handler, "timeout", 0.3)
    storage, endpoint = _holding(db_path)
    try:
        with socket.create_connection(
            ("127.0.0.1", int(str(endpoint.holding.url).rsplit(":", 1)[1]))
        ) as sock:
            sock.settimeout(5)
            assert sock.recv(1) == b""  # closed by the server, not by our timeout (which would raise)
    finally:
        endpoint.close()
        storage.close()
