"""The correlation of bet outcomes between picks on one game (issue 20, part 2): the table behind the joint Kelly.

    PYTHONPATH=src .venv/bin/python benchmarks/correlation.py [--boot 2000] [--seed 20]

Data: the real PRA lines of 2023-24 and 2024-25 (``../shared/data/prop-lines-pra``) and the box scores of both
seasons, ingested into a temporary DuckDB file with the project's own ``ingest_boxscores`` / ``ingest_lines``
(names resolved, duplicates dropped, quarantined lines left out).

- **The line** of a player-game: for PRA, the consensus — the median of the books' main lines (real). The other
  markets have no real line in the data, so theirs is *derived*: the PRA consensus times the player's share of
  that stat in his PRA over his earlier games of the season (at least 5; nothing of the game itself or later),
  put on the nearest half point (no push). The over rate at each market's line is printed: a derived line
  that sits far from the median would show it.
- **The outcome** of a bet: over wins = 1, under wins = 0; a push (an integer line met exactly) and a player
  without a box score (did not play, a playoff game, an unmatched name) are left out.
- **Pairs** on one game: the same player's two markets, two teammates, two opponents, for every market pair;
  and, as a control that must come out near 0, PRA of two players in *different* games of the same night.
- **phi**: the Pearson correlation of the two 0/1 outcomes over the pairs. 95% intervals from a bootstrap over
  games (a game's pairs move together; ``--boot`` resamples, fixed ``--seed``). ``n``: pairs (a same-market
  pair of two players counted once), ``games``: games with such a pair.
- **Out of sample**: each season on its own; ``holds`` says whether 2024-25's phi falls inside 2023-24's interval
  (the table the sizing uses is fitted on both; a reader can see how much it moves from one season to the next).
- **latent r**: the correlation of the Gaussian copula whose two thresholds reproduce the pooled over rates and
  the pooled phi (tetrachoric); that is what ``nbaprops.picks.stakes`` simulates with. The last block prints it
  as the Python literal kept in ``src/nbaprops/picks/correlation.py``.

**Cost of sizing** (``--runs``): ``nbaprops.picks.stakes.size`` on a night of 30 bets over 10 games (3 a game on
average, up to 6; probabilities 0.52-0.70, prices -140 to +130, random sides and markets, seed fixed), CPU time,
median of the runs after a first (which loads scipy's Sobol tables: a command's cost), and a night whose 30 bets
are on 5 games (6 a game on average), the heavier case.

Last line: ``correlation cells=… pairs=… seconds=… sizing_ms=…`` (the 10-game night).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import optimize, stats

from nbaprops.config import Settings
from nbaprops.ingest import ensure_aliases, ingest_boxscores, ingest_lines
from nbaprops.markets import MARKETS
from nbaprops.picks.stakes import size
from nbaprops.storage import open_storage

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NBAPROPS_SHARED_DATA", REPO.parent / "shared" / "data"))
SEASONS = ("2023-24", "2024-25")
MIN_HISTORY = 5
"""Earlier games of the season a player needs before a derived (non-PRA) line is set for him."""
RELATIONS = ("same player", "teammates", "opponents", "other game")
STAT = {"points": "pts", "rebounds": "reb", "assists": "ast", "threes": "fg3m"}

_DERIVED = " UNION ALL ".join(
    f"""SELECT season, game_id, game_date, team, player_lookup, '{m}' AS market, {i} AS mi,
              floor(line * c_{s} / c_pra) + 0.5 AS line, {s} AS value, FALSE AS real_line
       FROM joined WHERE c_n >= {MIN_HISTORY} AND c_pra > 0"""
    for i, (m, s) in enumerate(STAT.items())
)
OUTCOMES = f"""
CREATE TEMP TABLE outcomes AS
WITH cons AS (
    SELECT game_date, player_lookup, median(line) AS line
    FROM prop_lines WHERE market = 'pra' AND is_main AND quarantine_reason IS NULL
    GROUP BY ALL
), hist AS (
    SELECT season, game_id, game_date, team, player_lookup, pts, reb, ast, fg3m, pts + reb + ast AS pra,
           count(*) OVER w AS c_n, sum(pts) OVER w AS c_pts, sum(reb) OVER w AS c_reb, sum(ast) OVER w AS c_ast,
           sum(fg3m) OVER w AS c_fg3m, sum(pts + reb + ast) OVER w AS c_pra
    FROM box_scores
    WINDOW w AS (PARTITION BY season, player_lookup ORDER BY game_date ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), joined AS (
    SELECT h.*, c.line FROM cons c JOIN hist h USING (game_date, player_lookup)
), long AS (
    SELECT season, game_id, game_date, team, player_lookup, 'pra' AS market, {MARKETS.index("pra")} AS mi, line,
           pra AS value, TRUE AS real_line
    FROM joined
    UNION ALL {_DERIVED}
)
SELECT *, (value > line)::INTEGER AS y FROM long WHERE value <> line
"""
PAIRS = """
SELECT a.season, a.game_id,
       CASE WHEN a.game_id <> b.game_id THEN 'other game'
            WHEN a.player_lookup = b.player_lookup THEN 'same player'
            WHEN a.team = b.team THEN 'teammates' ELSE 'opponents' END AS relation,
       a.market AS m1, b.market AS m2, count(*) AS n, sum(a.y) AS sx, sum(b.y) AS sy, sum(a.y * b.y) AS sxy
FROM outcomes a JOIN outcomes b
     ON a.game_date = b.game_date AND a.mi <= b.mi AND NOT (a.player_lookup = b.player_lookup AND a.mi = b.mi)
        AND (a.game_id = b.game_id OR (a.market = 'pra' AND b.market = 'pra'))
GROUP BY ALL
"""


def load(workdir: Path) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, int, int]]]:
    """Per (season, game, relation, market pair): the pairs' sufficient statistics; per (market, real line):
    outcomes and overs."""
    storage = open_storage(workdir / "correlation.duckdb")
    try:
        ensure_aliases(storage)
        ingest_boxscores(storage, [SHARED / "nba-boxscores" / f"player_logs_{s}.csv" for s in SEASONS])
        ingest_lines(storage, [SHARED / "prop-lines-pra" / s / "pra_odds.csv" for s in SEASONS], market="pra")
        storage.execute(OUTCOMES)
        rates = {
            f"{season} {market}": (int(n), int(overs), int(games))
            for season, market, n, overs, games in storage.execute(
                "SELECT season, market, count(*), sum(y), count(DISTINCT game_id) FROM outcomes GROUP BY ALL"
            ).fetchall()
        }
        table = storage.arrow(PAIRS)
    finally:
        storage.close()
    cols = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    return cols, rates


def phi(n: np.ndarray, sx: np.ndarray, sy: np.ndarray, sxy: np.ndarray) -> np.ndarray:
    """The Pearson correlation of two 0/1 variables from their sums (NaN when one never varies)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        px, py = sx / n, sy / n
        return (sxy / n - px * py) / np.sqrt(px * (1 - px) * py * (1 - py))


def latent(px: float, py: float, target: float) -> float:
    """The copula correlation r whose thresholds give over rates ``px``, ``py`` and the outcomes' phi ``target``."""
    tx, ty = stats.norm.ppf(1 - px), stats.norm.ppf(1 - py)

    def gap(r: float) -> float:
        both = stats.multivariate_normal.cdf([-tx, -ty], cov=[[1.0, r], [r, 1.0]])
        return float((both - px * py) / np.sqrt(px * (1 - px) * py * (1 - py)) - target)

    return float(optimize.brentq(gap, -0.999, 0.999, xtol=1e-5))


def night(count: int, games: int, seed: int) -> list[dict[str, object]]:
    """``count`` bets spread over ``games`` games, drawn at random with a fixed seed (what a night looks like to
    the sizing: probabilities, prices, sides, markets, players, teams)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        game, p = int(rng.integers(games)), float(rng.uniform(0.52, 0.70))
        out.append(
            {
                "player_lookup": f"p{i}",
                "game_id": f"g{game}",
                "team": f"t{game}-{int(rng.integers(2))}",
                "market": str(rng.choice(MARKETS)),
                "side": str(rng.choice(["over", "under"])),
                "p_win": p,
                "p_lose": 1.0 - p,
                "price": float(rng.choice([-140.0, -120.0, -110.0, -100.0, 100.0, 110.0, 130.0])),
            }
        )
    return out


def sizing_ms(games: int, runs: int, seed: int) -> tuple[float, float, int]:
    """CPU milliseconds of sizing a 30-bet night over ``games`` games: the first call of the process (it loads
    scipy's Sobol tables) and the median of ``runs`` calls after it; the night's largest game."""
    bets = night(30, games, seed)
    spent = []
    for _ in range(runs + 1):
        started = time.process_time()
        size(bets, 1000.0, Settings())
        spent.append((time.process_time() - started) * 1000)
    largest = max(sum(b["game_id"] == g for b in bets) for g in {b["game_id"] for b in bets})
    return spent[0], float(np.median(spent[1:])), largest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="runs of the sizing cost (median)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cols, rates = load(Path(tmp))
    print("over rate at each market's line (real: PRA consensus; derived: the others)")
    for key in sorted(rates):
        n, overs, games = rates[key]
        print(f"  {key:18s} outcomes {n:6,d}  over {overs / n:.3f}  games {games:,d}")

    game_keys = np.char.add(cols["season"].astype(str), cols["game_id"].astype(str))
    games, game_index = np.unique(game_keys, return_inverse=True)
    rng = np.random.default_rng(args.seed)
    weights = rng.poisson(1.0, size=(args.boot, len(games))).astype(np.float64)
    cells = sorted(
        {(r, a, b) for r, a, b in zip(cols["relation"], cols["m1"], cols["m2"], strict=True)},
        key=lambda c: (RELATIONS.index(c[0]), MARKETS.index(c[1]), MARKETS.index(c[2])),
    )
    fields = ("n", "sx", "sy", "sxy")
    print(
        "\n| pair | markets | 2023-24 phi [95%] | n | 2024-25 phi [95%] | n | holds | both phi [95%] | n | games "
        "| latent r |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    literal, total = [], 0
    for relation, m1, m2 in cells:
        if relation == "other game" and (m1, m2) != ("pra", "pra"):
            continue
        in_cell = (cols["relation"] == relation) & (cols["m1"] == m1) & (cols["m2"] == m2)
        halve = (
            2 if m1 == m2 and relation != "same player" else 1
        )  # a same-market pair appears in both orders
        row, found = [], {}
        for season in (*SEASONS, None):
            keep = in_cell & ((cols["season"] == season) if season else True)
            per_game = np.zeros((len(games), 4))
            for k, f in enumerate(fields):
                np.add.at(per_game[:, k], game_index[keep], cols[f][keep].astype(np.float64))
            sums = per_game.sum(axis=0)
            point = float(phi(*sums))
            boot = phi(*(weights @ per_game).T)
            low, high = np.nanpercentile(boot, [2.5, 97.5])
            found[season] = (point, low, high, int(sums[0] // halve), int((per_game[:, 0] > 0).sum()), sums)
            row.append(f"{point:+.3f} [{low:+.3f}, {high:+.3f}] | {int(sums[0] // halve):,d}")
        first, second = found[SEASONS[0]], found[SEASONS[1]]
        holds = "yes" if first[1] <= second[0] <= first[2] else "no"
        point, low, high, n, n_games, sums = found[None]
        r = latent(sums[1] / sums[0], sums[2] / sums[0], point)
        total += n
        print(
            f"| {relation} | {m1} · {m2} | {row[0]} | {row[1]} | {holds} | {row[2]} | {n_games:,d} | {r:+.3f} |"
        )
        if relation != "other game":
            literal.append(
                f'    ("{relation}", "{m1}", "{m2}"): ({r:.3f}, {point:.3f}, {low:.3f}, {high:.3f}, {n}),'
            )
    print("\nMEASURED = {  # (relation, market, market): (latent r, phi, phi low, phi high, pairs)")
    print("\n".join(literal))
    print("}")
    seconds = time.perf_counter() - started
    cost = {}
    for games in (10, 5):
        first, cost[games], largest = sizing_ms(games, args.runs, args.seed)
        print(
            f"sizing 30 bets over {games} games (largest {largest}): {cost[games]:.0f} ms CPU, median of "
            f"{args.runs} (first call of the process: {first:.0f} ms)"
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"correlation cells={len(literal)} pairs={total} seconds={seconds:.0f} sizing_ms={cost[10]:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
