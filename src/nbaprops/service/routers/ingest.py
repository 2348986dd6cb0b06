"""``/v1/ingest/{boxscores|lines|schedule}``: multipart uploads through the same validation and single
transaction as ``nbaprops ingest``. The server never reads a path named in a request: uploads go to a private
temporary directory under names the server chooses, and only the uploaded names are reported back."""

from __future__ import annotations

import re
import shutil
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from nbaprops.errors import NbapropsError, from_wire, to_wire
from nbaprops.ingest import ensure_boxscores, ingest_boxscores, ingest_lines, ingest_schedule
from nbaprops.service.auth import require_key
from nbaprops.service.deps import runtime
from nbaprops.service.errors import ApiError, responses
from nbaprops.service.models import IngestReport, Market
from nbaprops.storage.inputs import Inputs

router = APIRouter(prefix="/v1/ingest", tags=["ingest"], dependencies=[Depends(require_key)])
_SUFFIXES = (".csv", ".parquet", ".txt")
MAX_FILES = 50


class IngestKind(StrEnum):
    boxscores = "boxscores"
    lines = "lines"
    schedule = "schedule"


def _ingest(storage: Inputs, kind: IngestKind, paths: list[Path], market: str | None) -> dict[str, Any]:

    # As the CLI: lines and schedules join players and teams of the box scores. An upload of any size is ingested
    # under the store's memory bound (the loader's), so DuckDB spills rather than grows the server.
    ensure_boxscores(storage)
    if kind is IngestKind.boxscores:
        report = ingest_boxscores(storage, paths)
    elif kind is IngestKind.lines:
        report = ingest_lines(storage, paths, market=market)
    else:
        report = ingest_schedule(storage, paths)
    return report.as_dict()


def _safe_name(index: int, filename: str | None) -> str:
    """A name in the private upload folder: the index, then the client's name reduced to letters, digits and
    ``_.-`` (ingest reads a market from a name like ``pra_odds.csv``, as the CLI does), a known suffix."""
    name = Path(filename or "")
    suffix = name.suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name.stem)[:80].lstrip(".")
    return f"{index}_{stem}{suffix if suffix in _SUFFIXES else '.csv'}"


@router.post(
    "/{kind}",
    response_model=IngestReport,
    summary="Ingest uploaded CSV or Parquet files",
    responses=responses(400, 401, 403, 413, 422, 503),
)
async def ingest(
    kind: IngestKind,
    request: Request,
    files: Annotated[list[UploadFile], File(description="One or more CSV or Parquet files.", min_length=1)],
    # Not Optional in the schema: a form field cannot be null, it is left out.
    market: Annotated[
        Market, Form(description="Lines only: the market of files without a market column.")
    ] = None,
) -> dict[str, Any]:
    """All files are validated first, then stored in one transaction; the same file twice adds nothing."""
    rt = runtime(request)
    if not files or len(files) > MAX_FILES:
        raise ApiError(422, f"send between 1 and {MAX_FILES} files in the 'files' field", "InputError")
    names = [re.sub(r"[^\w.\- ]", "_", f.filename or f"file {i + 1}")[:120] for i, f in enumerate(files)]
    workdir = Path(tempfile.mkdtemp(prefix="nbaprops-upload-"))
    try:
        paths = []
        for index, upload in enumerate(files):
            path = workdir / _safe_name(index, upload.filename)
            with path.open("wb") as target:
                shutil.copyfileobj(upload.file, target)
            paths.append(path)
        try:
            report = await rt.write(lambda: _ingest(rt.storage, kind, paths, market))
            rt.runner.inputs_changed()  # a repeated batch submission must see the new inputs
        except NbapropsError as exc:  # its message names the file: name the one the client sent
            record = to_wire(exc)
            for index, path in enumerate(paths):
                record = _replace_paths(record, str(path), names[index])
            raise from_wire(_replace_paths(record, str(workdir), "upload")) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # Report the names the client sent, never the server's temporary paths (in messages as well).
    report["files"] = names
    for index, path in enumerate(paths):
        report = _replace_paths(report, str(path), names[index])
    return report


def _replace_paths(value: Any, path: str, name: str) -> Any:
    if isinstance(value, str):
        return value.replace(path, name)
    if isinstance(value, list):
        return [_replace_paths(v, path, name) for v in value]
    if isinstance(value, dict):
        return {k: _replace_paths(v, path, name) for k, v in value.items()}
    return value
