"""Picks: the night's bets at the offers a user can take, staked by fractional Kelly within caps per bet, team,
game and night, and the pick log they are recorded in (issue 20, part 2).

- :mod:`nbaprops.picks.night`: :func:`picks`, what ``nbaprops picks`` and ``GET /v1/picks`` answer.
- :mod:`nbaprops.picks.offers`: a system's probability carried to every offer's line; the best offer it can take.
- :mod:`nbaprops.picks.stakes`: Kelly at the chosen price, joint over a game's picks (``sized_by``), cut by the caps
  (``cut_by``).
- :mod:`nbaprops.picks.correlation`: the measured correlations of bet outcomes on one game the joint Kelly uses.
- :mod:`nbaprops.picks.log`: ``pick_log``, each pick's offer and fair probability when it was made; the
  recorded picks' close and CLV, and their withdrawal when the line moves against them.
"""

from nbaprops.picks.log import logged_picks, record_picks, recorded_picks, review_picks
from nbaprops.picks.night import MAX_BOOKS, no_bet_reasons, picks, training_window
from nbaprops.picks.offers import OfferChoice, SystemBets, carried, choose_offers
from nbaprops.picks.stakes import CAPS, kelly, size

__all__ = [
    "CAPS",
    "MAX_BOOKS",
    "OfferChoice",
    "SystemBets",
    "carried",
    "choose_offers",
    "kelly",
    "logged_picks",
    "no_bet_reasons",
    "picks",
    "record_picks",
    "recorded_picks",
    "review_picks",
    "size",
    "training_window",
]
