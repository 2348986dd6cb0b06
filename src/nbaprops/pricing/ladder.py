"""Any line: fair probabilities and fair American odds of one player-market over a range of half-point lines."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from nbaprops.pricing.devig import american_odds
from nbaprops.pricing.distribution import LineDistribution


def ladder(
    distribution: LineDistribution, index: int, low: float, high: float, *, step: float = 0.5
) -> pa.Table:
    """Fair P(over), P(under), P(push) and fair American odds at every line from ``low`` to ``high``.

    Lines step by ``step`` (half points by default: x.0 lines push, x.5 lines do not). The fair odds of a side
    are those of its probability given the bet settles (a push refunds), so they are what a no-vig book
    would post.

    Columns: line, p_over, p_under, p_push, fair_over_odds, fair_under_odds.
    """
    lines = np.arange(low, high + step / 2, step, dtype=np.float64)
    one = distribution.at(np.full(lines.shape[0], index))
    p_over, p_under, p_push = one.probabilities(lines)
    settled = p_over + p_under
    return pa.table(
        {
            "line": lines,
            "p_over": p_over,
            "p_under": p_under,
            "p_push": p_push,
            "fair_over_odds": american_odds(p_over / settled),
            "fair_under_odds": american_odds(p_under / settled),
        }
    )
