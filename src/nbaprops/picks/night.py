"""Picks: the bets of a night at the offers a user can take, staked by fractional Kelly within caps.

:func:`picks` takes the active rows of one system recommending OVER or UNDER. The system picks the side; its
calibrated probability is carried to every offer of the player-market (:mod:`nbaprops.picks.offers`), and each
bet goes to the best-EV offer the user can take — an eligible offer of the board (a book of ``--books`` / the
``books`` setting, not an outlier line, a price near the consensus; quarantined lines never count) whose EV clears
the margin (``ev_margin``, or ``--min-ev`` if higher). Best EV first, one pick per player — the same player's points
and PRA move together, so two bets on him are one correlated bet — unless ``correlated`` asks for one per player
and market; each is staked at the chosen offer's price by fractional Kelly, cut by the caps per bet, team, game
and night (:mod:`nbaprops.picks.stakes`, which says which cap cut it). Each pick carries its offer, its fair
probability, the batch it came from and the training window of the model that made it; ``record`` writes them to
``pick_log`` (:mod:`nbaprops.picks.log`). A night without a bet says why (:func:`no_bet_reasons`).

Each pick also carries ``line_move`` / ``moved_against`` (how far the consensus has moved from the system's line,
as the board's flag). A pick of a player-market whose recorded pick was withdrawn is never staked again; with the
``withdraw_moved_against`` setting, neither is a pick that has moved against and not started, and a ``record``
run first withdraws the recorded ones that have (:func:`nbaprops.picks.log.review_picks`, one alert each).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from nbaprops.config import Settings
from nbaprops.errors import InputError
from nbaprops.ingest.lines import normalise_market
from nbaprops.markets import validate_market
from nbaprops.picks.log import record_picks, review_picks
from nbaprops.picks.offers import SystemBets, choose_offers
from nbaprops.picks.stakes import CAPS, size
from nbaprops.pipeline.board import _prediction_times, price_offers_of
from nbaprops.storage.seams import Backend
from nbaprops.systems import validate_systems

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


_ROWS = """SELECT player_lookup, player_name, team, opponent, game_id, market, system_id, recommendation,
                 predicted_value, line_value AS system_line, sportsbook AS system_book,
                 CASE recommendation WHEN 'OVER' THEN over_price ELSE under_price END AS system_price,
                 confidence_score AS system_p_win, expected_value AS system_ev, batch_id, model_version
          FROM {source}
          WHERE game_date = ? AND is_active AND system_id = ? AND (? IS NULL OR market = ?)
            AND recommendation IN ('OVER', 'UNDER') AND confidence_score IS NOT NULL AND line_value IS NOT NULL
          ORDER BY player_lookup, market"""
MAX_BOOKS = 100
"""More books than this in ``--books`` is not a list of books one bets at."""


def _system_rows(backend: Backend, game_date: date, system: str, market: str | None) -> list[dict[str, Any]]:
    active = backend.warehouse.active_predictions(game_date)
    if not active.num_rows:
        raise InputError(
            f"no active prediction for {game_date}; run `nbaprops predict --date {game_date}` first"
        )
    with backend.features.session() as session:
        source = session.temp_name("active")
        session.register(source, active)
        cursor = session.execute(_ROWS.format(source=source), [game_date, system, market, market])
        names = cursor.column_names()
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _at_offers(
    backend: Backend, game_date: date, rows: list[dict[str, Any]], books: Sequence[str]
) -> tuple[list[dict[str, Any]], int]:
    """``rows`` each with its best offer (book, line, side, price, p_win, p_lose, fair_p, ev, offers); the number
    of rows without any offer they could take."""
    if not rows:
        return [], 0
    names = list(rows[0])
    times = _prediction_times(backend, names, [list(r.values()) for r in rows])
    pricing = price_offers_of(
        backend, game_date, as_of=times, players=sorted({p for p, _ in times}),
        markets=sorted({m for _, m in times}), books=books,
    )  # fmt: skip
    if pricing is None:
        return [], len(rows)
    bets = SystemBets(
        player_lookup=[r["player_lookup"] for r in rows],
        market=[r["market"] for r in rows],
        over=np.array([r["recommendation"] == "OVER" for r in rows], dtype=bool),
        line=np.array([r["system_line"] for r in rows], dtype=np.float64),
        p_win=np.array([r["system_p_win"] for r in rows], dtype=np.float64),
        predicted=np.array([np.nan if r["predicted_value"] is None else r["predicted_value"] for r in rows]),
    )
    choice = choose_offers(bets, pricing)
    offers = pricing.offers.select(["bookmaker", "line", "over_price", "under_price"]).to_pylist()
    out = []
    for i, row in enumerate(rows):
        at = int(choice.offer[i])
        if at < 0:
            continue
        offer, over = offers[at], row["recommendation"] == "OVER"
        out.append(
            {
                **row,
                "side": "over" if over else "under",
                "bookmaker": offer["bookmaker"],
                "line": offer["line"],
                "price": offer["over_price" if over else "under_price"],
                "p_win": round(float(choice.p_win[i]), 6),
                "p_lose": round(float(choice.p_lose[i]), 6),
                "fair_p": round(float(choice.fair_p[i]), 6),
                "ev": round(float(choice.ev[i]), 6),
                "offers": int(choice.takeable[i]),
            }
        )
    return out, len(rows) - len(out)


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
    books: Sequence[str] | None = None,
    record: bool = False,
    made_at: datetime | None = None,
) -> dict[str, Any]:
    """The night's picks of ``system`` at the offers the user can take (module docstring), with their stakes.

    Args:
        books: the books the user bets at (None or empty: the ``books`` setting; that empty too: every book).
        record: write the picks to ``pick_log`` (the backend must be open for writing), at ``made_at``, and
            withdraw the recorded ones that moved against when ``withdraw_moved_against`` is on.
        made_at: the run's clock (default: now): when picks are recorded, and how far lines have moved by then.

    Raises:
        InputError: an unknown system or market, a non-positive bankroll, a list of books too long, or no
            prediction of the date.
    """
    validate_systems([system])
    if market is not None:
        market = validate_market(normalise_market(market))
    bankroll = settings.bankroll if bankroll is None else bankroll
    if not (bankroll > 0 and np.isfinite(bankroll)):
        raise InputError("--bankroll must be positive")
    allowed = tuple(b.strip() for b in (books or settings.books) if b.strip())
    if len(allowed) > MAX_BOOKS:
        raise InputError(f"--books lists {len(allowed)} books; at most {MAX_BOOKS}")
    margin = max(settings.ev_margin, min_ev)
    rows = _system_rows(backend, game_date, system, market)
    priced, no_offer = _at_offers(backend, game_date, rows, allowed)
    above = sorted(
        (r for r in priced if r["ev"] >= margin),
        key=lambda r: (-r["ev"], r["player_lookup"], r["market"]),
    )
    seen: set[tuple[str, ...]] = set()
    kept = []
    for row in above:
        key = (row["player_lookup"], row["market"]) if correlated else (row["player_lookup"],)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    now = made_at or datetime.now(UTC)
    review = review_picks(
        backend.features, settings, game_date, now=now, system=system, market=market,
        withdraw=record and settings.withdraw_moved_against, current=kept,
    )  # fmt: skip
    withdrawn = [r for r in review["picks"] if r["status"] == "withdrawn"]
    gone = {(r["player_lookup"], r["market"]) for r in withdrawn}
    left_out: dict[int, str] = {}
    for pick, flags in zip(kept, review["flags"], strict=True):
        pick.update(line_move=flags["line_move"], moved_against=flags["moved_against"])
        if (pick["player_lookup"], pick["market"]) in gone:
            left_out[id(pick)] = "withdrawn"
        elif settings.withdraw_moved_against and flags["moved_against"] and not flags["started"]:
            left_out[id(pick)] = "moved_against"
    sizing = size([p for p in kept if id(p) not in left_out], bankroll, settings)
    windows: dict[str | None, dict[str, Any]] = {}
    for pick in sizing.kept:
        version = pick["model_version"]
        if version not in windows:
            windows[version] = training_window(version, settings.artifacts_dir)
        pick.update(windows[version])
    result: dict[str, Any] = {
        "game_date": game_date.isoformat(),
        "system_id": system,
        "market": market,
        "books": list(allowed),
        "bankroll": bankroll,
        "kelly_fraction": settings.kelly_fraction,
        "ev_margin": margin,
        "max_bet": bankroll * settings.max_bet_fraction,
        "max_team": bankroll * settings.max_team_fraction,
        "max_game": bankroll * settings.max_game_fraction,
        "max_night": bankroll * settings.max_night_fraction,
        "min_ev": min_ev,
        "correlated": correlated,
        "count": len(sizing.kept),
        "staked": round(sum(p["stake"] for p in sizing.kept), 4),
        "cut": {c: sum(p["cut_by"] == c for p in sizing.kept) for c in CAPS},
        "dropped_correlated": len(above) - len(kept),
        "dropped_withdrawn": sum(why == "withdrawn" for why in left_out.values()),
        "dropped_moved_against": sum(why == "moved_against" for why in left_out.values()),
        "dropped_no_offer": no_offer,
        "dropped_below_margin": len(priced) - len(above),
        **{f"dropped_{c}": n for c, n in sizing.dropped.items()},
        "picks": sizing.kept,
        "withdrawn": [_withdrawn(r) for r in withdrawn],
        "withdrawn_now": len(review["withdrawn_now"]),
        "alerts_sent": review["alerts_sent"],
        "no_bets": [],
    }
    if not rows:
        result["no_bets"] = no_bet_reasons(backend, game_date, system=system, market=market) or [
            f"no bet of {system} on {game_date}"
        ]
    elif not sizing.kept:
        result["no_bets"] = [_why_none(result, len(rows))]
    if record:
        result.update(
            record_picks(
                backend.features,
                game_date,
                system,
                bankroll,
                sizing.kept,
                made_at=made_at or datetime.now(UTC),
            )
        )
    return result


def _withdrawn(row: dict[str, Any]) -> dict[str, Any]:
    """A withdrawn pick as ``picks`` lists it: its offer, and when, why and to what line it was withdrawn."""
    keys = ("player_lookup", "player_name", "market", "side", "bookmaker", "line", "price", "stake",
            "system_line", "withdrawn_line", "withdrawn_reason")  # fmt: skip
    return {**{k: row[k] for k in keys}, "withdrawn_at": row["withdrawn_at"].isoformat()}


def _why_none(result: dict[str, Any], bets: int) -> str:
    parts = []
    if result["dropped_no_offer"]:
        books = ", ".join(result["books"]) or "any book"
        parts.append(
            f"{result['dropped_no_offer']} have no offer they can take (at {books}: not an outlier line, a price "
            "near the consensus, a price on the system's side)"
        )
    if result["dropped_below_margin"]:
        parts.append(
            f"{result['dropped_below_margin']} have no offer whose expected value clears {result['ev_margin']:g}"
        )
    if result["dropped_withdrawn"]:
        parts.append(
            f"{result['dropped_withdrawn']} were recorded and withdrawn (their line moved against them)"
        )
    if result["dropped_moved_against"]:
        parts.append(
            f"{result['dropped_moved_against']} have a line that moved against them before tip-off "
            "(withdraw_moved_against)"
        )
    return f"{bets} bet(s) of {result['system_id']}, none at an offer: " + "; ".join(parts or ["none staked"])


__all__ = ["MAX_BOOKS", "no_bet_reasons", "picks", "training_window"]
