"""Write the recorded responses the live-source tests serve on loopback (tests/sources/recorded/).

Each file has the real shape of its service's answer; the values are either real or marked synthetic:

- ``leaguegamelog_2024-25.json`` — NBA.com ``leaguegamelog`` (player mode): ``resource``, ``parameters``,
  ``resultSets[{name, headers, rowSet}]``. Rows: the real box scores of 2025-02-10 and 2025-02-11 from the
  shipped Parquet (MIT, see data/boxscores/LICENSE.txt); ``FANTASY_PTS`` is computed with NBA.com's formula.
- ``scheduleleaguev2_2024-25.json`` — NBA.com ``scheduleleaguev2``: ``meta``, ``leagueSchedule{seasonYear,
  leagueId, gameDates[{gameDate, games[...]}], weeks}``. Games, ids and teams of 2025-02-10..12 are real
  (from the box scores); tip-off times, arenas and records are synthetic; one All-Star game (left out by the
  client) and one postponed game on 2025-02-13 are synthetic.
- ``Injury-Report_2025-02-12_05PM.pdf`` — a one-page PDF laid out like the official report of the 2024-25
  season (the column bounds ``nbainjuries`` uses), so the real parser (tabula-java) reads it. Giannis
  Antetokounmpo Out is real (out since 2025-02-02); the other listed players are real players who did not play
  (Out) or played (Questionable/Probable) that night; the reasons are synthetic.
- ``odds_events_2025-02-12.json`` and ``odds_event_<id>.json`` — The Odds API v4 event list and event odds
  (``bookmakers[].markets[].outcomes[{name, description, price, point}]``). Event ids, lines and prices are
  synthetic (lines: the player's last-10 average rounded to a half point).

Run: ``python tools/make_live_fixtures.py`` (needs only duckdb).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "sources" / "recorded"
BOX = REPO / "data" / "boxscores" / "player_logs.parquet"
DAY = date(2025, 2, 12)
LOG_DAYS = ("2025-02-10", "2025-02-11")
HEADERS = [
    "SEASON_ID",
    "PLAYER_ID",
    "PLAYER_NAME",
    "TEAM_ID",
    "TEAM_ABBREVIATION",
    "TEAM_NAME",
    "GAME_ID",
    "GAME_DATE",
    "MATCHUP",
    "WL",
    "MIN",
    "FGM",
    "FGA",
    "FG_PCT",
    "FG3M",
    "FG3A",
    "FG3_PCT",
    "FTM",
    "FTA",
    "FT_PCT",
    "OREB",
    "DREB",
    "REB",
    "AST",
    "STL",
    "BLK",
    "TOV",
    "PF",
    "PTS",
    "PLUS_MINUS",
]
# (team, player as the report prints him, status, reason)
REPORT = [
    ("Milwaukee Bucks", "MIL", "Antetokounmpo, Giannis", "Out", "Injury/Illness - Left Calf; Strain"),
    ("Milwaukee Bucks", "MIL", "Lillard, Damian", "Out", "Injury/Illness - Left Hamstring; Soreness"),
    ("Milwaukee Bucks", "MIL", "Kuzma, Kyle", "Probable", "Injury/Illness - Right Ankle; Sprain"),
    ("Minnesota Timberwolves", "MIN", "Randle, Julius", "Out", "Injury/Illness - Right Groin; Strain"),
    ("Minnesota Timberwolves", "MIN", "Gobert, Rudy", "Questionable", "Injury/Illness - Lower Back; Spasms"),
    ("Philadelphia 76ers", "PHI", "Embiid, Joel", "Out", "Injury/Illness - Left Knee; Management"),
    ("Philadelphia 76ers", "PHI", "Maxey, Tyrese", "Out", "Injury/Illness - Right Finger; Sprain"),
    ("Phoenix Suns", "PHX", "Booker, Devin", "Out", "Injury/Illness - Left Groin; Strain"),
    ("Boston Celtics", "BOS", "Brown, Jaylen", "Out", "Injury/Illness - Right Knee; Soreness"),
]


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE VIEW b AS SELECT * FROM read_parquet('{BOX}')")
    return con


def gamelog(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    cols = ", ".join(HEADERS)
    rows = con.execute(
        f"""SELECT {cols}, CAST(round(PTS + 1.2 * REB + 1.5 * AST + 3 * STL + 3 * BLK - TOV, 1) AS DOUBLE) AS FANTASY_PTS, 1
            FROM b WHERE CAST(GAME_DATE AS VARCHAR) IN {LOG_DAYS} ORDER BY GAME_DATE, GAME_ID, TEAM_ID, PLAYER_ID"""
    ).fetchall()
    row_set = [[v.isoformat() if isinstance(v, date) else v for v in r] for r in rows]
    return {
        "resource": "leaguegamelog",
        "parameters": {
            "LeagueID": "00",
            "Season": "2024-25",
            "SeasonType": "Regular Season",
            "PlayerOrTeam": "P",
            "Counter": 0,
            "Sorter": "DATE",
            "Direction": "ASC",
            "DateFrom": None,
            "DateTo": None,
        },
        "resultSets": [
            {
                "name": "LeagueGameLog",
                "headers": [*HEADERS, "FANTASY_PTS", "VIDEO_AVAILABLE"],
                "rowSet": row_set,
            }
        ],
    }


def _team(con: duckdb.DuckDBPyConnection, abbr: str) -> dict[str, object]:
    team_id, name = con.execute(
        "SELECT any_value(TEAM_ID), any_value(TEAM_NAME) FROM b WHERE TEAM_ABBREVIATION = ? AND SEASON_LABEL = '2024-25'",
        [abbr],
    ).fetchone()  # type: ignore[misc]
    city, _, nick = str(name).rpartition(" ")
    return {
        "teamId": team_id,
        "teamName": nick,
        "teamCity": city,
        "teamTricode": abbr,
        "teamSlug": nick.lower(),
        "wins": 0,
        "losses": 0,
        "score": 0,
        "seed": 0,
    }


def _game(
    game_id: str,
    day: str,
    home: dict[str, object],
    away: dict[str, object],
    *,
    status: int = 1,
    text: str = "7:00 pm ET",
    utc: str | None = None,
) -> dict[str, object]:
    tip = utc or f"{day}T00:00:00Z"
    return {
        "gameId": game_id,
        "gameCode": f"{day.replace('-', '')}/{away['teamTricode']}{home['teamTricode']}",
        "gameStatus": status,
        "gameStatusText": text,
        "gameSequence": 1,
        "gameDateEst": f"{day}T00:00:00Z",
        "gameTimeEst": "1900-01-01T19:00:00Z",
        "gameDateTimeEst": f"{day}T19:00:00Z",
        "gameDateUTC": f"{day}T05:00:00Z",
        "gameTimeUTC": "1900-01-02T00:00:00Z",
        "gameDateTimeUTC": tip,
        "awayTeamTime": f"{day}T19:00:00Z",
        "homeTeamTime": f"{day}T19:00:00Z",
        "day": "Wed",
        "monthNum": 2,
        "weekNumber": 17,
        "weekName": "Week 17",
        "ifNecessary": False,
        "seriesGameNumber": "",
        "gameLabel": "",
        "gameSubLabel": "",
        "seriesText": "",
        "arenaName": "Arena",
        "arenaState": "",
        "arenaCity": "",
        "postponedStatus": "A",
        "branchLink": "",
        "gameSubtype": "",
        "isNeutral": False,
        "broadcasters": {
            "nationalBroadcasters": [],
            "nationalRadioBroadcasters": [],
            "nationalOttBroadcasters": [],
            "homeTvBroadcasters": [],
            "homeRadioBroadcasters": [],
            "homeOttBroadcasters": [],
            "awayTvBroadcasters": [],
            "awayRadioBroadcasters": [],
            "awayOttBroadcasters": [],
        },
        "homeTeam": home,
        "awayTeam": away,
        "pointsLeaders": [],
    }


def schedule(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    dates = []
    for day in ("2025-02-10", "2025-02-11", "2025-02-12"):
        games = con.execute(
            """SELECT GAME_ID, any_value(CASE WHEN MATCHUP LIKE '%vs.%' THEN TEAM_ABBREVIATION END),
                      any_value(CASE WHEN MATCHUP LIKE '%@%' THEN TEAM_ABBREVIATION END)
               FROM b WHERE CAST(GAME_DATE AS VARCHAR) = ? GROUP BY GAME_ID ORDER BY GAME_ID""",
            [day],
        ).fetchall()
        final = day < DAY.isoformat()
        dates.append(
            {
                "gameDate": f"{day[5:7]}/{day[8:10]}/{day[:4]} 00:00:00",
                "games": [
                    _game(
                        g,
                        day,
                        _team(con, h),
                        _team(con, a),
                        status=3 if final else 1,
                        text="Final" if final else "7:00 pm ET",
                        utc=f"2025-02-{int(day[8:]) + 1:02d}T00:00:00Z",
                    )
                    for g, h, a in games
                ],
            }
        )
    dates.append(
        {
            "gameDate": "02/13/2025 00:00:00",
            "games": [
                _game(
                    "0022400799",
                    "2025-02-13",
                    _team(con, "SAC"),
                    _team(con, "DAL"),
                    text="PPD",
                    utc="2025-02-14T03:00:00Z",
                )
            ],
        }
    )
    all_star = {
        "teamId": 1610616833,
        "teamName": "Chuck's Global Stars",
        "teamCity": "",
        "teamTricode": "CHK",
        "teamSlug": "",
        "wins": 0,
        "losses": 0,
        "score": 0,
        "seed": 0,
    }
    shaq = {**all_star, "teamId": 1610616834, "teamName": "Shaq's OGs", "teamTricode": "SHQ"}
    dates.append(
        {
            "gameDate": "02/16/2025 00:00:00",
            "games": [_game("0032400001", "2025-02-16", all_star, shaq, utc="2025-02-17T01:00:00Z")],
        }
    )
    return {
        "meta": {
            "version": 1,
            "request": "http://nba.cloud/league/00/2024-25/scheduleleaguev2?Format=json",
            "time": "2025-02-12T16:00:00.000Z",
        },
        "leagueSchedule": {
            "seasonYear": "2024-25",
            "leagueId": "00",
            "gameDates": dates,
            "weeks": [
                {
                    "weekNumber": 17,
                    "weekName": "Week 17",
                    "startDate": "2025-02-10T00:00:00Z",
                    "endDate": "2025-02-16T00:00:00Z",
                }
            ],
        },
    }


# -- the injury-report PDF ------------------------------------------------------------------------------
# x of each column (points from the left) and the page of the 2024-25 report, inside nbainjuries' bounds.
_X = (24.0, 112.0, 188.0, 260.0, 376.0, 548.0, 660.0)
_PAGE = (842, 595)


def _pdf(lines: list[tuple[float, float, str]]) -> bytes:
    """A minimal one-page PDF with Helvetica text at (x, y-from-top) positions."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream = (
        "BT /F1 8 Tf\n"
        + "".join(f"1 0 0 1 {x:.1f} {_PAGE[1] - y:.1f} Tm ({esc(t)}) Tj\n" for x, y, t in lines)
        + "ET\n"
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE[0]} {_PAGE[1]}] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}endstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def injury_pdf(con: duckdb.DuckDBPyConnection) -> bytes:
    matchups = dict(
        con.execute(
            """SELECT TEAM_ABBREVIATION, CASE WHEN contains(MATCHUP, ' vs. ')
                   THEN split_part(MATCHUP, ' vs. ', 2) || '@' || split_part(MATCHUP, ' vs. ', 1)
                   ELSE replace(MATCHUP, ' @ ', '@') END
           FROM b WHERE GAME_DATE = '2025-02-12'"""
        ).fetchall()
    )
    for _, _abbr, name, *_ in REPORT:
        last, first = (p.strip() for p in name.split(","))
        assert con.execute(
            "SELECT count(*) FROM b WHERE PLAYER_NAME = ? AND GAME_DATE < '2025-02-12'", [f"{first} {last}"]
        ).fetchone()[0], name  # type: ignore[index]
    lines = [(24.0, 40.0, "Injury Report: 02/12/25 05:00 PM")]
    header = ("Game Date", "Game Time", "Matchup", "Team", "Player Name", "Current Status", "Reason")
    lines += [(x, 90.0, h) for x, h in zip(_X, header, strict=True)]
    y, last_game, last_team = 104.0, None, None
    for team, abbr, name, status, reason in sorted(REPORT, key=lambda r: (matchups[r[1]], r[1])):
        game = printed = matchups[abbr]  # away@home, as the report prints it
        cells = [
            "02/12/2025" if game != last_game else "",
            "07:00 (ET)" if game != last_game else "",
            printed if game != last_game else "",
            team if team != last_team else "",
            name,
            status,
            reason,
        ]
        lines += [(x, y, c) for x, c in zip(_X, cells, strict=True) if c]
        last_game, last_team, y = game, team, y + 13.0
    lines.append((380.0, 560.0, "Page 1 of 1"))
    return _pdf(lines)


# -- The Odds API ---------------------------------------------------------------------------------------
def odds(con: duckdb.DuckDBPyConnection) -> dict[str, object]:
    full = {
        "MIL": "Milwaukee Bucks",
        "MIN": "Minnesota Timberwolves",
        "PHI": "Philadelphia 76ers",
        "BKN": "Brooklyn Nets",
    }
    events = []
    files: dict[str, object] = {}
    for home, away in (("MIN", "MIL"), ("BKN", "PHI")):
        event_id = hashlib.md5(f"{home}{away}20250212".encode()).hexdigest()
        event = {
            "id": event_id,
            "sport_key": "basketball_nba",
            "sport_title": "NBA",
            "commence_time": "2025-02-13T01:00:00Z",
            "home_team": full[home],
            "away_team": full[away],
        }
        events.append(event)
        players = con.execute(
            """SELECT PLAYER_NAME, avg(PTS), avg(PTS + REB + AST) FROM (
                   SELECT *, row_number() OVER (PARTITION BY PLAYER_ID ORDER BY GAME_DATE DESC) k FROM b
                   WHERE GAME_DATE < '2025-02-12' AND GAME_DATE >= '2025-01-15' AND TEAM_ABBREVIATION IN (?, ?))
               WHERE k <= 10 GROUP BY PLAYER_NAME HAVING avg(MIN) >= 28 ORDER BY PLAYER_NAME""",
            [home, away],
        ).fetchall()
        books = []
        for key, title, shade, stamp in (
            ("draftkings", "DraftKings", 0.0, "2025-02-12T21:40:12Z"),
            ("fanduel", "FanDuel", 0.5, "2025-02-12T21:44:51Z"),
        ):
            markets = []
            for market, at in (("player_points", 1), ("player_points_rebounds_assists", 2)):
                outcomes = []
                for name, pts, pra in players:
                    line = round((pts if at == 1 else pra) * 2) / 2 + shade - 0.5
                    outcomes += [
                        {"name": "Over", "description": name, "price": -115, "point": line},
                        {"name": "Under", "description": name, "price": -105, "point": line},
                    ]
                markets.append({"key": market, "last_update": stamp, "outcomes": outcomes})
            books.append({"key": key, "title": title, "last_update": stamp, "markets": markets})
        files[f"odds_event_{event_id}.json"] = {**event, "bookmakers": books}
    files["odds_events_2025-02-12.json"] = events
    return files


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    con = _con()
    (OUT / "leaguegamelog_2024-25.json").write_text(json.dumps(gamelog(con), separators=(",", ":")))
    (OUT / "scheduleleaguev2_2024-25.json").write_text(json.dumps(schedule(con), indent=1))
    (OUT / "Injury-Report_2025-02-12_05PM.pdf").write_bytes(injury_pdf(con))
    for name, body in odds(con).items():
        (OUT / name).write_text(json.dumps(body, indent=1))
    print(f"wrote {len(list(OUT.iterdir()))} files to {OUT}")


if __name__ == "__main__":
    main()
