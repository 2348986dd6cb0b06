"""The market pricing study (issue 20, part 3) and the pricing cost of a slate.

    PYTHONPATH=src .venv/bin/python benchmarks/pricing.py [--method power] [--margin 0.02] [--boot 2000]
                                                          [--cost-runs 7]

Data: the real PRA lines of 2023-24 and 2024-25 (``../shared/data/prop-lines-pra``, every book's offer) and
the box scores of both seasons, ingested into a temporary DuckDB file with the project's own
``ingest_boxscores`` / ``ingest_lines`` (names resolved, duplicates dropped, quarantine applied: quarantined
lines are left out). An offer settles on the player's PTS + REB + AST; a player with no box-score row (did not
play, a playoff game, an unmatched name) is voided, an integer line equal to the outcome pushes.

1. **De-vig**: each method's log loss and ECE at each book's own line (no learning: every offer), per season,
   overall and per book — which method, which book is sharpest.
2. **Walk-forward** over both seasons, one date at a time: the book weights and the NB2 dispersion that price
   date D are learned only on offers and outcomes dated before D (``walk_forward_days``); the first dates
   (fewer than ``--min-history`` graded player-games before them) are priced but not scored.
   ECE of the fair P(over | settled) at the consensus line and at ±1, ±2, ±3 from it.
3. **Betting**: per player-game, the best-EV eligible offer (either side, any book, any line) when its EV
   exceeds ``--margin``, against the same side at the consensus book (``select_lines``' book), three ways: every
   book; every book with the price guard (``max_price_gap``, ``PRICE_GAP``); the books whose weight learned on
   earlier dates is at least ``SHARP_ENOUGH``. ROI per unit
   staked with 95% intervals from a bootstrap over game dates (bets of one date move together), bets, hit rate,
   the average overround of the offers taken, and hit rate by book.
4. **Cost**: ``price_slate`` on a 15-game slate made of the 15 real events with the most offers (median of
   ``--cost-runs`` runs, ms).

Last line: ``pricing ece0=… ece1=… ece2=… ece3=… roi_best=… roi_consensus=… ms_slate=…`` (ECE at ±k is the
larger of the two sides; ROI over both seasons).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from nbaprops.ingest import ensure_aliases, ingest_boxscores, ingest_lines
from nbaprops.markets import BOOK_GAP
from nbaprops.pricing import (
    DEFAULT_DISPERSION,
    METHODS,
    Dispersion,
    Method,
    decimal_odds,
    fair_over,
    fit_consensus,
    learn_book_weights,
    learn_dispersion,
    overround,
    price_offers,
    price_slate,
    settle,
    walk_forward_days,
)
from nbaprops.pricing.fair import Offers
from nbaprops.pricing.offers import best_offers, offers_from_arrow
from nbaprops.storage import open_storage

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", REPO.parent / "shared" / "data"))
SEASONS = ("2023-24", "2024-25")
OFFSETS = (-3, -2, -1, 0, 1, 2, 3)
PRICE_GAP = 0.1
"""The 'price guard' rows bet only offers whose own fair P(over) is within this of the consensus at their line."""
SHARP_ENOUGH = 0.1
"""A book whose walk-forward weight is below this (log loss > 0.023 nat per offer worse than the sharpest) is
not bet at in the 'reliable books' rows."""


def load_offers(workdir: Path) -> pa.Table:
    """Every unquarantined PRA offer of both seasons with its outcome (NULL: voided), via the project's ingest."""
    storage = open_storage(workdir / "study.duckdb")
    ensure_aliases(storage)
    ingest_boxscores(storage, [SHARED / "nba-boxscores" / f"player_logs_{s}.csv" for s in SEASONS])
    ingest_lines(storage, [SHARED / "prop-lines-pra" / s / "pra_odds.csv" for s in SEASONS], market="pra")
    try:
        return storage.arrow(
            """SELECT p.game_date, p.player_lookup, p.market, p.bookmaker, p.line, p.over_price, p.under_price,
                      p.is_main, CASE WHEN month(p.game_date) >= 8 THEN year(p.game_date) ELSE year(p.game_date) - 1
                                 END AS season_start, b.pts + b.reb + b.ast AS outcome
               FROM prop_lines p LEFT JOIN box_scores b
                    ON b.game_date = p.game_date AND b.player_lookup = p.player_lookup
               WHERE p.market = 'pra' AND p.quarantine_reason IS NULL
               ORDER BY p.game_date, p.player_lookup, p.bookmaker, p.line"""
        )
    finally:
        storage.close()


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error, 10 equal-width bins, weighted by their counts."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    n = np.bincount(index, minlength=bins)
    gap = np.abs(np.bincount(index, weights=p - y, minlength=bins))
    return float(gap.sum() / max(n.sum(), 1))


def describe(model: Dispersion) -> str:
    at = ", ".join(f"{m:.0f}: {model.at(m):.3f}" for m in (10.0, 20.0, 30.0, 40.0))
    return f"NB2 dispersion at mean {at}; shift {model.shift:+.3f}"


def interval(bounds: tuple[float, float]) -> str:
    return f"[{bounds[0]:+.3f}, {bounds[1]:+.3f}]"


def season_label(start: int) -> str:
    return f"{start}-{(start + 1) % 100:02d}"


def devig_study(table: pa.Table) -> dict[str, dict[str, tuple[float, float, int]]]:
    """method -> scope (season/overall/book) -> (log loss, ECE, n) at each book's own line."""
    y = settle(
        np.asarray(table["outcome"].to_numpy(zero_copy_only=False), dtype=float), table["line"].to_numpy()
    )
    season = table["season_start"].to_numpy()
    book = np.asarray(table["bookmaker"].to_pylist(), dtype=object)
    result: dict[str, dict[str, tuple[float, float, int]]] = {}
    for method in METHODS:
        p = fair_over(table["over_price"].to_numpy(), table["under_price"].to_numpy(), method)
        ok = np.isfinite(p) & np.isfinite(y)
        scopes: dict[str, np.ndarray] = {"all": ok}
        for s in np.unique(season):
            scopes[season_label(int(s))] = ok & (season == s)
        for b in sorted(set(book.tolist())):
            scopes[str(b)] = ok & (book == b)
        result[method] = {k: (log_loss(p[m], y[m]), ece(p[m], y[m]), int(m.sum())) for k, m in scopes.items()}
    return result


def walk_forward(
    table: pa.Table,
    method: Method,
    min_history: int,
    shift: bool = True,
    refit_days: int = 7,
    window: int = 5000,
) -> tuple[Offers, pa.Table, dict[str, np.ndarray], dict[str, Any]]:
    """Price every date with weights and dispersion learned on earlier dates only; per-group results."""
    offers, keys = offers_from_arrow(table)
    n = offers.n_groups
    group_date = np.asarray(keys["game_date"].to_numpy(), dtype="datetime64[D]")
    outcome_offer = np.asarray(table["outcome"].to_numpy(zero_copy_only=False), dtype=float)
    outcome = np.full(n, np.nan)
    outcome[offers.group] = outcome_offer
    fair_all = fair_over(offers.over_price, offers.under_price, method)
    went_over = settle(outcome_offer, offers.line)
    book_names = np.asarray(offers.books, dtype=object)[offers.book]
    offer_date = group_date[offers.group]
    mean = np.full(n, np.nan)
    market_mean = np.full(n, np.nan)
    dispersion = np.full(n, np.nan)
    model = DEFAULT_DISPERSION
    line = np.full(n, np.nan)
    consensus_offer = np.full(n, -1)
    scored = np.zeros(n, dtype=bool)
    best_over = np.full(n, -1)
    best_under = np.full(n, -1)
    ev_over = np.full(n, np.nan)
    ev_under = np.full(n, np.nan)
    best_over_sharp = np.full(n, -1)
    best_over_guard = np.full(n, -1)
    best_under_guard = np.full(n, -1)
    ev_over_guard = np.full(n, np.nan)
    ev_under_guard = np.full(n, np.nan)
    best_under_sharp = np.full(n, -1)
    ev_over_sharp = np.full(n, np.nan)
    ev_under_sharp = np.full(n, np.nan)
    eligible = np.zeros(len(offers), dtype=bool)
    ev_offer_over = np.full(len(offers), np.nan)
    ev_offer_under = np.full(len(offers), np.nan)
    weights_log: dict[str, dict[str, float]] = {}
    dispersion_log: dict[str, Dispersion] = {}
    for index, (day, train_offers, today_offers) in enumerate(walk_forward_days(offer_date)):
        train_groups = group_date < day
        history = int(np.isfinite(outcome[train_groups] + mean[train_groups]).sum())
        weights = learn_book_weights(
            book_names[train_offers], fair_all[train_offers], went_over[train_offers]
        )
        if index % refit_days == 0 or model == DEFAULT_DISPERSION:
            # The most recent `window` player-markets: enough to pin three numbers, and recent.
            recent = np.flatnonzero(train_groups)[-window:]
            model = learn_dispersion(market_mean[recent], outcome[recent], line[recent], shift=shift)
        groups_today = np.flatnonzero(group_date == day)
        local = np.full(n, -1)
        local[groups_today] = np.arange(groups_today.size)
        rows = np.flatnonzero(today_offers)
        day_offers = Offers(
            group=local[offers.group[rows]],
            book=offers.book[rows],
            line=offers.line[rows],
            over_price=offers.over_price[rows],
            under_price=offers.under_price[rows],
            is_main=offers.is_main[rows],
            books=offers.books,
            n_groups=groups_today.size,
        )
        consensus = fit_consensus(
            day_offers, dispersion=model, book_weight=weights, method=method, max_gap=BOOK_GAP["pra"]
        )
        prices = price_offers(day_offers, consensus)
        best = best_offers(day_offers, prices, consensus)
        # The books the market itself has found unreliable on earlier dates (weight < SHARP_ENOUGH) are
        # left out of the second set of bets.
        unreliable = [b for b in offers.books if weights.get(b, 1.0) < SHARP_ENOUGH]
        sharp = best_offers(
            day_offers, price_offers(day_offers, consensus, excluded_books=unreliable), consensus
        )
        guarded = best_offers(
            day_offers, price_offers(day_offers, consensus, max_price_gap=PRICE_GAP), consensus
        )
        best_over_guard[groups_today] = np.where(guarded.over >= 0, rows[guarded.over], -1)
        best_under_guard[groups_today] = np.where(guarded.under >= 0, rows[guarded.under], -1)
        ev_over_guard[groups_today] = guarded.ev_over
        ev_under_guard[groups_today] = guarded.ev_under
        best_over_sharp[groups_today] = np.where(sharp.over >= 0, rows[sharp.over], -1)
        best_under_sharp[groups_today] = np.where(sharp.under >= 0, rows[sharp.under], -1)
        ev_over_sharp[groups_today] = sharp.ev_over
        ev_under_sharp[groups_today] = sharp.ev_under
        mean[groups_today] = consensus.distribution.mean
        market_mean[groups_today] = consensus.market_mean
        dispersion[groups_today] = consensus.distribution.dispersion
        line[groups_today] = consensus.line
        consensus_offer[groups_today] = np.where(
            consensus.consensus_offer >= 0, rows[consensus.consensus_offer], -1
        )
        best_over[groups_today] = np.where(best.over >= 0, rows[best.over], -1)
        best_under[groups_today] = np.where(best.under >= 0, rows[best.under], -1)
        ev_over[groups_today] = best.ev_over
        ev_under[groups_today] = best.ev_under
        eligible[rows] = prices.eligible
        ev_offer_over[rows] = prices.ev_over
        ev_offer_under[rows] = prices.ev_under
        scored[groups_today] = history >= min_history
        weights_log[str(day)] = weights
        dispersion_log[str(day)] = model
    per_group = {
        "date": group_date,
        "season": np.asarray(
            [season_label(d.astype(object).year - (d.astype(object).month < 8)) for d in group_date],
            dtype=object,
        ),
        "outcome": outcome,
        "mean": mean,
        "dispersion": dispersion,
        "line": line,
        "consensus_offer": consensus_offer,
        "scored": scored,
        "best_over": best_over,
        "best_under": best_under,
        "ev_over": ev_over,
        "ev_under": ev_under,
        "best_over_guard": best_over_guard,
        "best_under_guard": best_under_guard,
        "ev_over_guard": ev_over_guard,
        "ev_under_guard": ev_under_guard,
        "best_over_sharp": best_over_sharp,
        "best_under_sharp": best_under_sharp,
        "ev_over_sharp": ev_over_sharp,
        "ev_under_sharp": ev_under_sharp,
    }
    return offers, keys, per_group, {"weights": weights_log, "dispersion": dispersion_log}


def calibration_by_offset(
    per_group: dict[str, np.ndarray], season: str | None
) -> dict[int, tuple[float, float, int]]:
    from nbaprops.pricing import line_probabilities

    mask = per_group["scored"] & np.isfinite(per_group["mean"]) & np.isfinite(per_group["line"])
    if season:
        mask &= per_group["season"] == season
    out: dict[int, tuple[float, float, int]] = {}
    for k in OFFSETS:
        at = per_group["line"][mask] + k
        over, under, _ = line_probabilities(per_group["mean"][mask], per_group["dispersion"][mask], at)
        p = over / (over + under)
        y = settle(per_group["outcome"][mask], at)
        ok = np.isfinite(y)
        out[k] = (ece(p[ok], y[ok]), log_loss(p[ok], y[ok]), int(ok.sum()))
    return out


def profit(side_over: np.ndarray, line: np.ndarray, price: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Profit per unit staked; NaN where voided; 0 on a push."""
    win = np.where(side_over, outcome > line, outcome < line)
    push = outcome == line
    result = np.where(push, 0.0, np.where(win, decimal_odds(price) - 1.0, -1.0))
    return np.where(np.isnan(outcome), np.nan, result)


def bootstrap_roi(
    pnl: np.ndarray, dates: np.ndarray, reps: int, rng: np.random.Generator
) -> tuple[float, float]:
    """95% interval of the ROI, resampling game dates (a date's bets together)."""
    if pnl.size == 0:
        return (float("nan"), float("nan"))
    labels, index = np.unique(dates, return_inverse=True)
    sums = np.bincount(index, weights=pnl, minlength=labels.size)
    counts = np.bincount(index, minlength=labels.size).astype(float)
    draws = rng.integers(0, labels.size, size=(reps, labels.size))
    roi = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    return (float(np.quantile(roi, 0.025)), float(np.quantile(roi, 0.975)))


def betting(
    offers: Offers,
    per_group: dict[str, np.ndarray],
    margin: float,
    season: str | None,
    reps: int,
    books: str = "",
) -> dict[str, Any]:
    """The bets of one margin and season; ``books="_sharp"`` uses the offers of the reliable books only,
    ``"_guard"`` those that pass the price guard."""
    rng = np.random.default_rng(20)
    ev_over, ev_under = per_group["ev_over" + books], per_group["ev_under" + books]
    take_over = np.nan_to_num(ev_over, nan=-np.inf) >= np.nan_to_num(ev_under, nan=-np.inf)
    index = np.where(take_over, per_group["best_over" + books], per_group["best_under" + books])
    ev = np.where(take_over, ev_over, ev_under)
    bet = (
        per_group["scored"]
        & (index >= 0)
        & (np.nan_to_num(ev, nan=-np.inf) > margin)
        & (per_group["consensus_offer"] >= 0)
        & np.isfinite(per_group["outcome"])
    )
    if season:
        bet &= per_group["season"] == season
    chosen = index[bet]
    over = take_over[bet]
    outcome = per_group["outcome"][bet]
    ref = per_group["consensus_offer"][bet]
    dates = per_group["date"][bet]
    pnl_best = profit(
        over,
        offers.line[chosen],
        np.where(over, offers.over_price[chosen], offers.under_price[chosen]),
        outcome,
    )
    pnl_ref = profit(
        over, offers.line[ref], np.where(over, offers.over_price[ref], offers.under_price[ref]), outcome
    )
    margin_best = overround(offers.over_price[chosen], offers.under_price[chosen])
    margin_ref = overround(offers.over_price[ref], offers.under_price[ref])
    settled_best = pnl_best != 0
    settled_ref = pnl_ref != 0
    books = np.asarray(offers.books, dtype=object)[offers.book[chosen]]
    by_book = {}
    for b in sorted(set(books.tolist())):
        m = (books == b) & settled_best
        by_book[str(b)] = (
            int((books == b).sum()),
            float(np.mean(pnl_best[m] > 0)) if m.any() else float("nan"),
        )
    return {
        "bets": int(bet.sum()),
        "roi_best": float(np.mean(pnl_best)) if pnl_best.size else float("nan"),
        "ci_best": bootstrap_roi(pnl_best, dates, reps, rng),
        "roi_ref": float(np.mean(pnl_ref)) if pnl_ref.size else float("nan"),
        "ci_ref": bootstrap_roi(pnl_ref, dates, reps, rng),
        "hit_best": float(np.mean(pnl_best[settled_best] > 0)) if settled_best.any() else float("nan"),
        "hit_ref": float(np.mean(pnl_ref[settled_ref] > 0)) if settled_ref.any() else float("nan"),
        # One-sided offers (the other price missing) have no overround: left out of the average.
        "overround_best": float(np.nanmean(margin_best)) if margin_best.size else float("nan"),
        "overround_ref": float(np.nanmean(margin_ref)) if margin_ref.size else float("nan"),
        "mean_ev": float(np.mean(ev[bet])) if bet.any() else float("nan"),
        "by_book": by_book,
    }


def slate_cost(
    table: pa.Table, runs: int, dispersion: float, weights: dict[str, float]
) -> tuple[float, int, int]:
    """Median ms of ``price_slate`` over the offers of the 15 real events with the most offers, as one slate."""
    import pyarrow.compute as pc

    # An event is a date and a set of players; group by date + player first letter is not an event, so rebuild
    # events from (game_date, home/away) is not available here: use the dates with the most offers instead and
    # take whole player-games until 15 games' worth (about 20 players a game) are in.
    counts = table.group_by(["game_date", "player_lookup"]).aggregate([("line", "count")])
    counts = counts.sort_by(
        [("line_count", "descending"), ("game_date", "ascending"), ("player_lookup", "ascending")]
    )
    take = counts.slice(0, 15 * 16)
    key = pc.binary_join_element_wise(pc.cast(table["game_date"], pa.string()), table["player_lookup"], "|")
    wanted = pc.binary_join_element_wise(pc.cast(take["game_date"], pa.string()), take["player_lookup"], "|")
    slate = table.filter(pc.is_in(key, value_set=wanted))
    slate = slate.select(
        ["game_date", "player_lookup", "market", "bookmaker", "line", "over_price", "under_price", "is_main"]
    )
    # One slate date, so the player-markets are what a 15-game night prices.
    slate = slate.set_column(0, "game_date", pa.array([slate["game_date"][0].as_py()] * slate.num_rows))
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        price_slate(slate, dispersion={"pra": dispersion}, book_weight=weights, max_gap=BOOK_GAP)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    # CPU time as well: on a shared machine the wall time measures the neighbours too.
    return statistics.median(times), statistics.median(cpu), slate.num_rows, take.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="multiplicative", choices=METHODS)
    parser.add_argument("--margin", type=float, default=0.02)
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--cost-runs", type=int, default=7)
    parser.add_argument("--min-history", type=int, default=300)
    parser.add_argument("--cost-only", action="store_true", help="only the slate cost (section 4)")
    parser.add_argument(
        "--no-shift", action="store_true", help="keep the market's own centre (no learned shift)"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    cache = os.environ.get("NBAPROPS_PRICING_CACHE")  # a Parquet file of the loaded offers, for iterating
    if cache and Path(cache).exists():
        import pyarrow.parquet as pq

        table = pq.read_table(cache)
    else:
        with tempfile.TemporaryDirectory() as workdir:
            table = load_offers(Path(workdir))
        if cache:
            import pyarrow.parquet as pq

            pq.write_table(table, cache)
    print(f"offers: {table.num_rows} (load {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    if args.cost_only:
        ms, cpu_ms, rows, players = slate_cost(table, args.cost_runs, DEFAULT_DISPERSION, {})
        print(f"pricing ms_slate={ms:.1f} cpu_ms_slate={cpu_ms:.1f} offers={rows} player_games={players}")
        return

    print("\n## De-vig at each book's own line (log loss / ECE / n; every offer, no learning)")
    devig = devig_study(table)
    scopes = list(devig[METHODS[0]])
    print(f"{'scope':<22}" + "".join(f"{m:>24}" for m in METHODS))
    for scope in scopes:
        cells = "".join(
            f"{devig[m][scope][0]:>10.4f} {devig[m][scope][1]:>6.4f} {devig[m][scope][2]:>6}" for m in METHODS
        )
        print(f"{scope:<22}{cells}")
    best_method = min(METHODS, key=lambda m: devig[m]["all"][0])
    print(f"lowest overall log loss: {best_method}")
    print("\n## Books by log loss at their own line (" + args.method + "; ln 2 = 0.6931 is a coin)")
    book_rows = sorted(
        (devig[args.method][s][0], s, devig[args.method][s][2])
        for s in scopes
        if s != "all" and not s[:4].isdigit()
    )
    for loss, name, n in book_rows:
        print(f"{name:<22}{loss:>8.4f}{n:>8}")

    t0 = time.perf_counter()
    offers, _keys, per_group, learned = walk_forward(table, args.method, args.min_history, not args.no_shift)
    wf_s = time.perf_counter() - t0
    last_day = max(learned["weights"])
    print(
        f"\nwalk-forward: {len(learned['weights'])} dates in {wf_s:.1f} s; last date's spread "
        f"{describe(learned['dispersion'][last_day])}; last weights "
        + ", ".join(
            f"{b} {w:.2f}" for b, w in sorted(learned["weights"][last_day].items(), key=lambda x: -x[1])
        )
    )

    print("\n## Fair distribution at the consensus line + k (ECE / log loss / n), walk-forward")
    print(f"{'season':<10}" + "".join(f"{k:>+22d}" for k in OFFSETS))
    calib: dict[str, dict[int, tuple[float, float, int]]] = {}
    for season in (*SEASONS, None):
        calib[season or "both"] = calibration_by_offset(per_group, season)
        row = calib[season or "both"]
        print(
            f"{season or 'both':<10}"
            + "".join(f"{row[k][0]:>8.4f} {row[k][1]:>6.4f} {row[k][2]:>6}" for k in OFFSETS)
        )

    print(
        f"\n## Best-EV offer (EV > {args.margin}) vs the same side at the consensus book (ROI per unit, 95% CI over dates)"
    )
    print(
        f"{'season':<10}{'bets':>6}{'mean EV':>9}{'ROI best':>10}{'95% CI':>18}{'ROI cons.':>10}{'95% CI':>18}"
        f"{'hit best':>9}{'hit cons':>9}{'vig best':>9}{'vig cons':>9}"
    )
    bets: dict[str, dict[str, Any]] = {}
    labels = {
        "": "all books",
        "_guard": f"all books, price guard (own fair P(over) within {PRICE_GAP} of the consensus at its line)",
        "_sharp": f"reliable books only (walk-forward weight >= {SHARP_ENOUGH})",
    }
    for books, label in labels.items():
        print(label)
        for margin in sorted({0.0, args.margin, 0.05}):
            for season in (*SEASONS, None):
                b = betting(offers, per_group, margin, season, args.boot, books)
                bets[f"{margin}:{season or 'both'}{books}"] = b
                print(
                    f"{(season or 'both') + '@' + str(margin):<10}{b['bets']:>6}{b['mean_ev']:>9.3f}{b['roi_best']:>10.3f}"
                    f"{interval(b['ci_best']):>18}{b['roi_ref']:>10.3f}"
                    f"{interval(b['ci_ref']):>18}{b['hit_best']:>9.3f}{b['hit_ref']:>9.3f}"
                    f"{b['overround_best']:>9.4f}{b['overround_ref']:>9.4f}"
                )
    main_bets = bets[f"{args.margin}:both"]
    sharp_bets = bets[f"{args.margin}:both_sharp"]
    guard_bets = bets[f"{args.margin}:both_guard"]
    for label, chosen in (
        ("all books", main_bets),
        ("price guard", guard_bets),
        ("reliable books", sharp_bets),
    ):
        print(
            f"\n## Hit rate by book of the best-EV bets ({label}, EV > {args.margin}, both seasons): bets, hit rate"
        )
        for book, (n, hit) in sorted(chosen["by_book"].items(), key=lambda x: -x[1][0]):
            print(f"{book:<22}{n:>6}{hit:>8.3f}")

    ms, cpu_ms, rows, players = slate_cost(
        table, args.cost_runs, learned["dispersion"][last_day], learned["weights"][last_day]
    )
    print(
        f"\n## Cost: price_slate on {rows} offers of {players} player-games (15 games' worth): {ms:.1f} ms wall, {cpu_ms:.1f} ms CPU, medians of {args.cost_runs}"
    )
    both = calib["both"]
    print(f"runtime {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(
        f"pricing method={args.method} shift={not args.no_shift} ece0={both[0][0]:.4f} ece1={max(both[1][0], both[-1][0]):.4f} "
        f"ece2={max(both[2][0], both[-2][0]):.4f} ece3={max(both[3][0], both[-3][0]):.4f} "
        f"roi_best={main_bets['roi_best']:.4f} roi_consensus={main_bets['roi_ref']:.4f} bets={main_bets['bets']} "
        f"vig_best={main_bets['overround_best']:.4f} vig_consensus={main_bets['overround_ref']:.4f} "
        f"roi_best_guard={guard_bets['roi_best']:.4f} bets_guard={guard_bets['bets']} "
        f"roi_best_reliable={sharp_bets['roi_best']:.4f} roi_consensus_reliable={sharp_bets['roi_ref']:.4f} "
        f"bets_reliable={sharp_bets['bets']} vig_best_reliable={sharp_bets['overround_best']:.4f} ms_slate={ms:.1f} cpu_ms_slate={cpu_ms:.1f}"
    )


if __name__ == "__main__":
    main()
