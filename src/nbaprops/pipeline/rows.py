"""Prediction rows: one row per (player, market, system), in the staging contract's columns.

:func:`prediction_rows` runs the systems of one market on a feature table, turns value and spread into
P(over) at the consensus line, calibrates it and recommends by expected value at the offered price (a row whose
system strays from every other system and the line — :func:`stray_rows` — is flagged ``stray`` in
``prediction_error_code`` and not priced); the
daily batch and the backtest both call it, so what is graded is what the batch would have written.
:func:`staging_rows` is the pure function of arrays under it, so that every producer of staging rows fills the
same columns the same way. ``prediction_id`` is deterministic (batch, game, player, market,
system), which makes a repeated insert of the same batch a no-op.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from nbaprops.features.columns import FEATURE_VERSION
from nbaprops.features.market import availability_column, with_market
from nbaprops.markets import STRAY_GAP
from nbaprops.pipeline.ledger import Lease
from nbaprops.systems.base import SystemOutput, column
from nbaprops.systems.betting import recommend
from nbaprops.systems.calibration import standardized_edge
from nbaprops.systems.spread import p_over
from nbaprops.systems.training import ModelBundle


def prediction_id(batch_id: str, game_id: str, player_lookup: str, market: str, system_id: str) -> str:
    return hashlib.sha1(f"{batch_id}|{game_id}|{player_lookup}|{market}|{system_id}".encode()).hexdigest()[
        :20
    ]


def _floats(values: Sequence[float | None] | np.ndarray | None, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, pa.float64())
    arr = np.asarray(values, dtype=np.float64)
    return pa.array(arr, pa.float64(), mask=~np.isfinite(arr))


def staging_rows(
    *,
    batch_id: str,
    game_date: object,
    leases: Sequence[Lease],
    market: str,
    system_id: str,
    predicted_value: np.ndarray,
    predicted_std: np.ndarray | None = None,
    model_version: str,
    feature_version: str,
    now: datetime,
    line_value: np.ndarray | None = None,
    sportsbook: Sequence[str | None] | None = None,
    over_price: np.ndarray | None = None,
    under_price: np.ndarray | None = None,
    p_over_raw: np.ndarray | None = None,
    p_over: np.ndarray | None = None,
    recommendation: Sequence[str] | None = None,
    confidence_raw: np.ndarray | None = None,
    confidence_score: np.ndarray | None = None,
    calibration_method: str | None = None,
    expected_value: np.ndarray | None = None,
    feature_quality_score: np.ndarray | None = None,
    feature_count: np.ndarray | None = None,
    early_season_flag: Sequence[bool | None] | None = None,
    prediction_error_code: Sequence[str | None] | None = None,
) -> pa.Table:
    """Rows of one market and system for ``leases`` (arrays aligned with ``leases``)."""
    n = len(leases)
    value = np.asarray(predicted_value, dtype=np.float64)
    lines = np.full(n, np.nan) if line_value is None else np.asarray(line_value, dtype=np.float64)
    recs = (
        list(recommendation)
        if recommendation is not None
        else ["NO_LINE" if not np.isfinite(line) else "PASS" for line in lines]
    )
    codes = (
        list(prediction_error_code)
        if prediction_error_code is not None
        else [None if np.isfinite(v) else "no_prediction" for v in value]
    )
    game_ids = [lease.game_id or "" for lease in leases]
    return pa.table(
        {
            "prediction_id": [
                prediction_id(batch_id, g, lease.player_lookup, market, system_id)
                for g, lease in zip(game_ids, leases, strict=True)
            ],
            "batch_id": pa.array([batch_id] * n, pa.string()),
            "system_id": pa.array([system_id] * n, pa.string()),
            "market": pa.array([market] * n, pa.string()),
            "game_id": pa.array(game_ids, pa.string()),
            "game_date": pa.array([game_date] * n, pa.date32()),
            "player_lookup": pa.array([lease.player_lookup for lease in leases], pa.string()),
            "player_id": pa.array([lease.player_id for lease in leases], pa.int64()),
            "player_name": pa.array([lease.player_name for lease in leases], pa.string()),
            "team": pa.array([lease.team for lease in leases], pa.string()),
            "opponent": pa.array([lease.opponent for lease in leases], pa.string()),
            "is_home": pa.array([lease.is_home for lease in leases], pa.bool_()),
            "predicted_value": _floats(value, n),
            "predicted_std": _floats(predicted_std, n),
            "line_value": _floats(lines, n),
            "sportsbook": pa.array(list(sportsbook) if sportsbook is not None else [None] * n, pa.string()),
            "over_price": _floats(over_price, n),
            "under_price": _floats(under_price, n),
            "edge": _floats(value - lines, n),
            "p_over_raw": _floats(p_over_raw, n),
            "p_over": _floats(p_over, n),
            "recommendation": pa.array(recs, pa.string()),
            "confidence_raw": _floats(confidence_raw, n),
            "confidence_score": _floats(confidence_score, n),
            "calibration_method": pa.array([calibration_method] * n, pa.string()),
            "expected_value": _floats(expected_value, n),
            "feature_version": pa.array([feature_version] * n, pa.string()),
            "feature_quality_score": _floats(feature_quality_score, n),
            "feature_count": pa.array(
                None if feature_count is None else np.asarray(feature_count, dtype=np.float64),
                pa.float64(),
            ).cast(pa.int32())
            if feature_count is not None
            else pa.nulls(n, pa.int32()),
            "early_season_flag": pa.array(
                list(early_season_flag) if early_season_flag is not None else [None] * n, pa.bool_()
            ),
            "prediction_error_code": pa.array(codes, pa.string()),
            "model_version": pa.array([model_version] * n, pa.string()),
            "attempt": pa.array([lease.attempt for lease in leases], pa.int32()),
            "is_active": pa.array([True] * n, pa.bool_()),
            "created_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
            "updated_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        }
    )


def lines_for(lines: pa.Table, market: str, lookups: list[str]) -> dict[str, Any]:
    """The consensus line, prices and book of each player (NaN / None without a line)."""
    n = len(lookups)
    out: dict[str, Any] = {
        "line": np.full(n, np.nan),
        "over": np.full(n, np.nan),
        "under": np.full(n, np.nan),
        "book": [None] * n,
    }
    if lines.num_rows == 0:
        return out
    sel = {
        lk: i
        for i, (lk, m) in enumerate(
            zip(lines.column("player_lookup").to_pylist(), lines.column("market").to_pylist(), strict=True)
        )
        if m == market
    }
    cols = {
        k: lines.column(c).to_pylist()
        for k, c in (
            ("line", "book_line"),
            ("over", "over_price"),
            ("under", "under_price"),
            ("book", "bookmaker"),
        )
    }
    for k, lk in enumerate(lookups):
        j = sel.get(lk)
        if j is None:
            continue
        for key in ("line", "over", "under"):
            value = cols[key][j]
            out[key][k] = np.nan if value is None else value
        out["book"][k] = cols["book"][j]
    return out


def _market_columns(feats: pa.Table, line: dict[str, Any], market: str) -> pa.Table:
    avail = availability_column(market)
    return with_market(
        feats,
        line["line"],
        line["over"],
        line["under"],
        column(feats, avail) if avail in feats.column_names else None,
    )


def with_market_columns(feats: pa.Table, lines: pa.Table, market: str, lookups: list[str]) -> pa.Table:
    """``feats`` (rows of ``lookups``) with the market columns systems read, from one date's selected lines."""
    return _market_columns(feats, lines_for(lines, market, lookups), market)


def stray_rows(values: Mapping[str, np.ndarray], line: np.ndarray, market: str) -> dict[str, np.ndarray]:
    """Per system, the rows where its value strays: more than :data:`~nbaprops.markets.STRAY_GAP` from the
    median of the other systems' values (at least two of them) and from the line (when there is one).

    A system that strays that far from every other and from the market is more likely broken on that player
    (``similarity`` said 30.7 PRA for Trayce Jackson-Davis on 2024-01-15, the others 18-19, the line 15.5)
    than right; such a row is flagged and never priced or bet.
    """
    gap = STRAY_GAP[market]
    ids = list(values)
    if not ids:
        return {}
    stacked = np.vstack([np.asarray(values[sid], dtype=np.float64) for sid in ids])
    lines = np.asarray(line, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for k, sid in enumerate(ids):
        others = np.delete(stacked, k, axis=0)
        enough = np.isfinite(others).sum(axis=0) >= 2
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no median, no flag
            median = np.nanmedian(others, axis=0) if others.size else np.full(lines.size, np.nan)
        value = stacked[k]
        far_from_others = enough & (np.abs(value - median) > gap)
        far_from_line = ~np.isfinite(lines) | (np.abs(value - lines) > gap)
        out[sid] = np.asarray(far_from_others & far_from_line & np.isfinite(value), dtype=bool)
    return out


def prediction_rows(
    *,
    bundle: ModelBundle,
    systems: Sequence[str],
    feats: pa.Table,
    leases: Sequence[Lease],
    lines: pa.Table,
    market: str,
    batch_id: str,
    game_date: date,
    ev_margin: float,
    now: datetime,
    outputs: Mapping[str, SystemOutput] | None = None,
) -> list[pa.Table]:
    """Staging rows of one market for players of one date: value, spread, P(over), calibration, recommendation.

    The daily batch and the backtest both call this, so what is graded is what the batch would have written.

    Args:
        outputs: the systems' predictions of ``feats`` when already made (the backtest predicts a whole step's
            rows at once); by default each system predicts ``feats`` here.
    """
    line = lines_for(lines, market, [lease.player_lookup for lease in leases])
    quality = feats.column("feature_quality_score").to_numpy(zero_copy_only=False)
    count = feats.column("feature_count").to_numpy(zero_copy_only=False)
    early = feats.column("early_season_flag").to_pylist()
    # The line and prices each player's row is judged against, as the market columns systems may read.
    feats = _market_columns(feats, line, market)
    tables = []
    made = {
        sid: outputs[sid] if outputs is not None else bundle.systems[sid].predict(feats) for sid in systems
    }
    strays = stray_rows({sid: out.predicted_value for sid, out in made.items()}, line["line"], market)
    for sid in systems:
        out = made[sid]
        stray = strays[sid]
        # A stray row is not priced: no P(over), so no bet and no expected value.
        p_raw = np.where(stray, np.nan, p_over(out.predicted_value, out.predicted_std, line["line"]))
        cal = bundle.calibrators[sid]
        p_cal = np.where(
            stray,
            np.nan,
            cal.transform(standardized_edge(out.predicted_value, out.predicted_std, line["line"]), p_raw),
        )
        codes = [
            "stray" if is_stray else None if np.isfinite(v) else "no_prediction"
            for is_stray, v in zip(stray, np.asarray(out.predicted_value, dtype=np.float64), strict=True)
        ]
        recs = recommend(
            p_raw,
            p_cal,
            line["line"],
            line["over"],
            line["under"],
            predicted=out.predicted_value,
            margin=ev_margin,
            allow_bets=cal.allows_bets,
        )
        tables.append(
            staging_rows(
                batch_id=batch_id,
                game_date=game_date,
                leases=leases,
                market=market,
                system_id=sid,
                predicted_value=out.predicted_value,
                predicted_std=out.predicted_std,
                model_version=out.model_version,
                feature_version=FEATURE_VERSION,
                now=now,
                line_value=line["line"],
                sportsbook=line["book"],
                over_price=line["over"],
                under_price=line["under"],
                p_over_raw=p_raw,
                p_over=p_cal,
                recommendation=recs.recommendation,
                confidence_raw=recs.confidence_raw,
                confidence_score=recs.confidence_score,
                calibration_method=cal.method,
                expected_value=recs.expected_value,
                feature_quality_score=quality,
                feature_count=count,
                early_season_flag=early,
                prediction_error_code=codes,
            )
        )
    return tables
