"""Player-name normalisation: the one definition of ``player_lookup``.

``player_lookup`` is the name lower-cased, without accents, punctuation, spaces or generational suffixes
("Jr", "Sr", "II", "III", "IV", "V"): ``"Jaren Jackson Jr."`` → ``"jarenjackson"``, ``"Nikola Jokić"`` →
``"nikolajokic"``. Names that still differ between sportsbooks and NBA.com ("Herb Jones" / "Herbert Jones")
go through the ``player_aliases`` table. The SQL form (:func:`lookup_sql`) and the Python form
(:func:`player_lookup`) are kept identical by a test; SQL is used for bulk loads (no Python UDFs: they are
slow in DuckDB).
"""

from __future__ import annotations

import re
import unicodedata

_SUFFIX = r"\s+(jr|sr|ii|iii|iv|v)$"
_NON_ALNUM = r"[^a-z0-9 ]"


def player_lookup(name: str) -> str:
    """Normalise one player name (see the module docstring)."""
    text = unicodedata.normalize("NFKD", name.strip().lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(_NON_ALNUM, "", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(_SUFFIX, "", text)
    return text.replace(" ", "")


def lookup_sql(expr: str) -> str:
    """A DuckDB SQL expression computing :func:`player_lookup` of the SQL expression ``expr``."""
    return (
        "replace(regexp_replace(trim(regexp_replace(regexp_replace("
        f"strip_accents(lower(trim({expr}))), '{_NON_ALNUM}', '', 'g'), '\\s+', ' ', 'g')), "
        f"'{_SUFFIX}', ''), ' ', '')"
    )


# Sportsbook spellings seen in real line files that normalisation alone cannot join (alias → box-score lookup).
# Only unambiguous ones. Initials ("G Antetokounmpo"), surname-first and bracketed-team spellings are matched
# per game among the players of its two teams instead (nbaprops.ingest.lines._match_sportsbook_names).
KNOWN_ALIASES: dict[str, str] = {
    "nicolasclaxton": "nicclaxton",
    "carltoncarrington": "bubcarrington",
    "moewagner": "moritzwagner",
    "herbjones": "herbertjones",
    "cameronthomas": "camthomas",
    "mohamedbamba": "mobamba",
    "ronholland": "ronaldholland",
    "vincentwilliams": "vincewilliams",
    "murraydejounte": "dejountemurray",
    "portisbobby": "bobbyportis",
    "brookrobertlopez": "brooklopez",
    "sgilgeousalexander": "shaigilgeousalexander",
    "alfredjoelhorfordreynoso": "alhorford",
    "wembanyamavictor": "victorwembanyama",
    "christianjamesmccollum": "cjmccollum",
    "joshuagiddey": "joshgiddey",
    "nicholasbatum": "nicolasbatum",
    "camjohnson": "cameronjohnson",
    "grantjerami": "jeramigrant",
    "jalen2001johnson": "jalenjohnson",
    "kenyonmartin": "kjmartin",
    "bojanbogdanovich": "bojanbogdanovic",
    "gregoryjackson": "ggjackson",
    "obadiahtoppin": "obitoppin",
    "bjboston": "brandonboston",
    "jameshuff": "jayhuff",
    "danilogalinari": "danilogallinari",
    "huerterkevin": "kevinhuerter",
    "ericambrosegordon": "ericgordon",
}
