"""Picks: the bets of a night, staked by fractional Kelly.

:func:`picks` takes the active rows of one system recommending OVER or UNDER, best expected value (at the
offered price, with the calibrated probability) first, keeps one per player — the same player's points and
PRA move together, so two bets on him are one correlated bet — unless ``correlated`` asks for one per player
and market, and stakes each at ``kelly_fraction`` of the Kelly stake ``p - (1 - p) / b`` (``p`` the
calibrated probability the side wins, ``b`` the profit per unit at the price), capped at ``max_bet_fraction`` of
the bankroll per bet and ``max_night_fraction`` per night (later picks get what the cap leaves; those it leaves
nothing are counted in ``dropped_night_cap``). Each pick carries the batch it came from and the training window of
the model that made it. A night without a bet says why (:func:`no_bet_reasons`).
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.markets import validate_market
from nbaprops.storage.seams import Backend
from nbaprops.systems import validate_systems
from nbaprops.systems.betting import payout

# model_version of a trained system: "<system>@<market>-<through:%Y%m%d>-<digest>" (systems/training.py)
_VERSION = re.compile(r"^(?P<system>[^@]+)@(?P<market>[a-z]+)-(?P<through>\d{8})-(?P<digest>[0-9a-f]+)$")


def training_window(model_version: str | None, artifacts_dir: Path) -> dict[str, Any]:
    """The training window of the model behind a row: ``through`` from its version, ``train_start`` from the
    artifact's ``meta.json`` when it is still stored (and has the same digest)."""
    match = _VERSION.match(model_version or "")
    if match is None:
        return {"train_start": None, "trained_through": None}
    through = date(int(match["through"][:4]), int(match["through"][4:6]), int(match["through"][6:]))
    start = None
    meta = artifacts_dir / match["market"] / through.isoformat() / "meta.json"
    try:
        stored = json.loads(meta.read_text())
        if stored.get("digest") == match["digest"]:
            start = stored.get("train_start")
    except (OSError, ValueError):
        pass
    return {"train_start": start, "trained_through": through.isoformat()}


def kelly(p_win: float, price: float) -> float:
    """Full-Kelly fraction of the bankroll on a bet won with probability ``p_win`` at American odds ``price``."""
    b = float(payout(price))  # type: ignore[arg-type]
    return p_win - (1.0 - p_win) / b if b > 0 else 0.0


_METHOD_REASON = {
    "no_signal": "no relation between the model's edge and the outcome on the graded rows it was calibrated on "
    "(calibration no_signal), so every row is PASS",
    "none": "too few graded rows with a line to calibrate on (calibration none), so every row is PASS",
}


def no_bet_reasons(
    backend: Backend, game_date: date, *, system: str | None = None, market: str | None = None
) -> list[str]:
    """Why there is no OVER or UNDER among the active rows of ``game_date``: one sentence per (market, system)
    without a bet (for an empty ``picks`` or ``predictions --bets``; the calibrator's reason used to show only in
    ``predict``'s summary)."""
    active = backend.warehouse.active_predictions(game_date)
    if not active.num_rows:
        return [f"no active prediction for {game_date}; run `nbaprops predict --date {game_date}` first"]
    with backend.features.session() as session:
        source = session.temp_name("active")
        session.register(source, active)
        groups = session.execute(
            f"""SELECT market, system_id, count(*) FILTER (WHERE recommendation IN ('OVER', 'UNDER')) AS bets,
                       count(line_value) AS with_line, count(*) FILTER (WHERE prediction_error_code = 'stray')
                           AS strays,
                       mode(calibration_method) FILTER (WHERE line_value IS NOT NULL) AS method
                FROM {source}
                WHERE game_date = ? AND is_active AND (? IS NULL OR system_id = ?) AND (? IS NULL OR market = ?)
                GROUP BY ALL ORDER BY market, system_id""",
            [game_date, system, system, market, market],
        ).fetchall()
    reasons = []
    for mkt, sid, bets, with_line, strays, method in groups:
        if bets:
            continue
        if not with_line:
            why = "no player has a line"
        else:
            why = _METHOD_REASON.get(
                method, "no row's expected value at the offered price clears the margin (ev_margin)"
            )
        if strays:
            why += f"; {strays} row(s) flagged stray (far from the other systems and the line) are not priced"
        reasons.append(f"{mkt} {sid}: no bets — {why}")
    if not groups:
        reasons.append(
            f"no active row of {system or 'any system'} for {market or 'any market'} on {game_date}"
        )
    return reasons


def picks(
    backend: Backend,
    settings: Settings,
    game_date: date,
    *,
    system: str = "ensemble",
    market: str | None = None,
    min_ev: float = 0.0,
    bankroll: float | None = None,
    correlated: bool = False,
) -> dict[str, Any]:
    """The night's picks of ``system`` (see the module docstring), with their stakes.

    Raises:
        InputError: an unknown system or market, a non-positive bankroll, or no prediction of the date.
    """
    validate_systems([system])
    if market is not None:
        validate_market(market)
    bankroll = settings.bankroll if bankroll is None else bankroll
    if bankroll <= 0:
        raise InputError("--bankroll must be positive")
    active = backend.warehouse.active_predictions(game_date)
    if not active.num_rows:
        raise InputError(
            f"no active prediction for {game_date}; run `nbaprops predict --date {game_date}` first"
        )
    with backend.features.session() as session:
        source = session.temp_name("active")
        session.register(source, active)
        cursor = session.execute(
            f"""SELECT player_lookup, player_name, team, opponent, game_id, market, system_id, recommendation,
                  predicted_value, line_value, sportsbook,
                  CASE recommendation WHEN 'OVER' THEN over_price ELSE under_price END AS price,
                  confidence_score AS p_win, expected_value, batch_id, model_version
           FROM {source}
           WHERE game_date = ? AND is_active AND system_id = ? AND (? IS NULL OR market = ?)
             AND recommendation IN ('OVER', 'UNDER') AND expected_value >= ?
             AND confidence_score IS NOT NULL AND (CASE recommendation WHEN 'OVER' THEN over_price
                                                   ELSE under_price END) IS NOT NULL
           ORDER BY expected_value DESC, player_lookup, market""",
            [game_date, system, market, market, min_ev],
        )
        names = cursor.column_names()
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    per_bet = bankroll * settings.max_bet_fraction
    left = bankroll * settings.max_night_fraction
    chosen: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    correlated_dropped = capped_out = 0
    windows: dict[str | None, dict[str, Any]] = {}
    for row in rows:
        key = (row["player_lookup"], row["market"]) if correlated else (row["player_lookup"],)
        if key in seen:
            correlated_dropped += 1
            continue
        seen.add(key)
        full = kelly(row["p_win"], row["price"])
        stake = min(bankroll * settings.kelly_fraction * max(full, 0.0), per_bet, left)
        if stake <= 0:
            capped_out += 1
            continue
        left -= stake
        if row["model_version"] not in windows:
            windows[row["model_version"]] = training_window(row["model_version"], settings.artifacts_dir)
        chosen.append(
            {**row, "kelly_full": round(full, 6), "stake": round(stake, 4), **windows[row["model_version"]]}
        )
    return {
        "game_date": game_date.isoformat(),
        "system_id": system,
        "market": market,
        "bankroll": bankroll,
        "kelly_fraction": settings.kelly_fraction,
        "max_bet": per_bet,
        "max_night": bankroll * settings.max_night_fraction,
        "min_ev": min_ev,
        "correlated": correlated,
        "count": len(chosen),
        "staked": round(sum(p["stake"] for p in chosen), 4),
        "dropped_correlated": correlated_dropped,
        "dropped_night_cap": capped_out,
        "picks": chosen,
        "no_bets": []
        if rows
        else no_bet_reasons(backend, game_date, system=system, market=market)
        or [f"no bet of {system} has an expected value of at least {min_ev:g} (--min-ev)"],
    }


__all__ = ["kelly", "no_bet_reasons", "picks", "training_window"]
