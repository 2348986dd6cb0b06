"""Market pricing: de-vig every book's offer, combine the books into one fair count distribution per
player-market, price any line, and rank every (book, line, side) by its EV (issue 20, parts 1–2)."""

from nbaprops.pricing.devig import (
    METHODS,
    Method,
    american_odds,
    decimal_odds,
    fair_over,
    implied_probability,
    overround,
)
from nbaprops.pricing.distribution import LineDistribution, line_probabilities
from nbaprops.pricing.fair import (
    DEFAULT_DISPERSION,
    Consensus,
    Dispersion,
    Offers,
    before,
    fit_consensus,
    learn_book_weights,
    learn_dispersion,
    settle,
    walk_forward_days,
)
from nbaprops.pricing.ladder import ladder
from nbaprops.pricing.learn import MarketModel, learn_market
from nbaprops.pricing.offers import (
    BestOffers,
    OfferPrices,
    SlatePricing,
    best_offers,
    expected_value,
    offers_from_arrow,
    price_offers,
    price_slate,
)

__all__ = [
    "DEFAULT_DISPERSION",
    "METHODS",
    "BestOffers",
    "Consensus",
    "Dispersion",
    "LineDistribution",
    "MarketModel",
    "Method",
    "OfferPrices",
    "Offers",
    "SlatePricing",
    "american_odds",
    "before",
    "best_offers",
    "decimal_odds",
    "expected_value",
    "fair_over",
    "fit_consensus",
    "implied_probability",
    "ladder",
    "learn_book_weights",
    "learn_dispersion",
    "learn_market",
    "line_probabilities",
    "offers_from_arrow",
    "overround",
    "price_offers",
    "price_slate",
    "settle",
    "walk_forward_days",
]
