"""Rebuild ``data/boxscores/player_logs.parquet`` from the NBA.com LeagueGameLog CSVs.

Run once by maintainers when new seasons are added::

    python tools/build_boxscores.py ../shared/data/nba-boxscores/player_logs_*.csv

The Parquet file keeps the NBA.com column names and values unchanged (only typed and sorted), so the
package's ingest path reads it exactly as it reads a CSV.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

OUT = Path(__file__).resolve().parents[1] / "data" / "boxscores" / "player_logs.parquet"


def main(paths: list[str]) -> None:
    con = duckdb.connect()
    files = ", ".join(f"'{p}'" for p in sorted(paths))
    con.execute(
        f"""
        COPY (
            SELECT * FROM read_csv([{files}], header=true, union_by_name=true,
                                   types={{'GAME_ID': 'VARCHAR', 'SEASON_ID': 'VARCHAR'}})
            ORDER BY GAME_DATE, GAME_ID, PLAYER_ID
        ) TO '{OUT}' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 19, ROW_GROUP_SIZE 65536)
        """
    )
    print(OUT, OUT.stat().st_size, con.execute(f"SELECT count(*) FROM '{OUT}'").fetchone())


if __name__ == "__main__":
    main(sys.argv[1:])
