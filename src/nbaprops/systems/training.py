"""Training and versioned artifacts.

``train_market`` fits the requested systems (the ensemble brings its four components) on every player-game
in ``[through - train_days, through)``, learns each system's error spread out of sample (the last fifth of
the training dates, see :mod:`nbaprops.systems.base`) and calibrates P(over) on those same held-out rows
where a real line was posted for them
(a monotone map of the standardized edge, :mod:`nbaprops.systems.calibration`). The result is stored under
``<artifacts_dir>/<market>/<through>/`` as ``bundle.pkl`` with a readable ``meta.json`` (training window,
rows, expected error per system, calibration). ``load_latest`` returns the newest bundle trained only on
games before a date. Training is deterministic: the same rows give the same artifacts and predictions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nbaprops.config import Settings
from nbaprops.errors import ArtifactError
from nbaprops.features.builder import FEATURE_VERSION, build_training_set
from nbaprops.features.market import with_stored_lines
from nbaprops.ingest.lines import select_lines
from nbaprops.markets import MARKET_STAT, validate_market
from nbaprops.storage.inputs import Inputs
from nbaprops.systems import REGISTRY, SYSTEM_IDS, PredictionSystem, make, validate_systems
from nbaprops.systems.calibration import CALIBRATION_VERSION, Calibrator, standardized_edge
from nbaprops.systems.ensemble import COMPONENTS
from nbaprops.systems.market_blend import MarketBlend

log = logging.getLogger(__name__)

DEFAULT_TRAIN_DAYS: int = Settings.train_days
BUNDLE_FILE = "bundle.pkl"
META_FILE = "meta.json"


@dataclass
class ModelBundle:
    """Fitted systems of one market, trained on games in ``[train_start, through)``."""

    market: str
    through: date
    train_start: date
    systems: dict[str, PredictionSystem]
    calibrators: dict[str, Calibrator]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def systems_to_fit(system_ids: tuple[str, ...] | list[str]) -> list[str]:
    """The requested systems plus what they need, in fitting order."""
    wanted = set(validate_systems(system_ids))
    for sid in list(wanted):
        wanted |= set(REGISTRY[sid].requires)
    return [s for s in SYSTEM_IDS if s in wanted]


def _holdout_lines(storage: Inputs, rows: pa.Table, market: str) -> pa.Table | None:
    """Lines posted for the dates of ``rows`` (consensus main line per player and date), if any are stored."""
    dates = sorted(set(rows.column("game_date").to_pylist()))
    if not dates or not storage.scalar("SELECT count(*) FROM prop_lines WHERE market = ?", [market]):
        return None
    lines = select_lines(storage, dates, [market], as_of=None)
    return lines if lines.num_rows else None


def training_window(training: pa.Table, start: date, through: date) -> pa.Table:
    """The rows of a prebuilt training set dated in ``[start, through)``."""
    d = training.column("game_date")
    return training.filter(pc.and_(pc.greater_equal(d, pa.scalar(start)), pc.less(d, pa.scalar(through))))


def train_market(
    storage: Inputs,
    market: str,
    through: date,
    *,
    system_ids: tuple[str, ...] | list[str],
    train_days: int = DEFAULT_TRAIN_DAYS,
    training: pa.Table | None = None,
) -> ModelBundle:
    """Fit ``system_ids`` for ``market`` on games before ``through``, then calibrate on their held-out rows.

    Args:
        training: a prebuilt training set (from :func:`build_training_set`) covering the window; rows outside
            ``[through - train_days, through)`` are ignored (the backtest builds features once and slices).
    """
    validate_market(market)
    start = through - timedelta(days=train_days)
    if training is None:
        training = build_training_set(storage, start, through)
    else:
        training = training_window(training, start, through)
    training = with_market_history(storage, training, market)
    bundle = fit_market(training, market, through, system_ids=system_ids, train_days=train_days)
    return calibrate_holdout(storage, bundle, training)


def with_market_history(storage: Inputs, training: pa.Table, market: str) -> pa.Table:
    """Training rows with what the market said before each game (:mod:`nbaprops.features.market`; NaN without
    a line), for systems that start from the line. Rows that already have the columns are returned as they are
    (the backtest adds them once to its whole range)."""
    if "market_line" in training.column_names:
        return training
    return with_stored_lines(training, _holdout_lines(storage, training, market), storage)


def fit_market(
    training: pa.Table,
    market: str,
    through: date,
    *,
    system_ids: tuple[str, ...] | list[str],
    train_days: int,
) -> ModelBundle:
    """Fit the systems on ``training`` (the window's rows) without touching storage; no calibrators yet.

    The part of :func:`train_market` that a worker process can run (the backtest fits its steps in parallel);
    :func:`calibrate_holdout` completes the bundle.
    """
    start, actual, digest = _window(training, market, through, train_days)
    fitted: dict[str, PredictionSystem] = {}
    for sid in systems_to_fit(list(system_ids)):
        system = make(sid, market, components=dict(fitted)) if REGISTRY[sid].requires else make(sid, market)
        fitted[sid] = system.fit(training, actual, version=f"{sid}@{market}-{through:%Y%m%d}-{digest}")
    return ModelBundle(market, through, start, fitted, {}, {"digest": digest, "train_days": train_days})


def _window(training: pa.Table, market: str, through: date, train_days: int) -> tuple[date, np.ndarray, str]:
    """The window's first day, its outcomes and the digest that names its models."""
    start = through - timedelta(days=train_days)
    if training.num_rows < 200:
        raise ArtifactError(
            f"only {training.num_rows} player-games before {through} in a {train_days}-day window: too few to train"
        )
    stat = MARKET_STAT[market]
    actual = np.asarray(training.column(f"actual_{stat}").to_numpy(zero_copy_only=False), dtype=np.float64)
    digest = hashlib.sha256(
        f"{market}|{start}|{through}|{training.num_rows}|{float(np.nansum(actual))}|{FEATURE_VERSION}".encode()
    ).hexdigest()[:8]
    return start, actual, digest


def refit_market(
    anchor: ModelBundle,
    training: pa.Table,
    through: date,
    *,
    train_days: int,
    kept: Mapping[str, PredictionSystem] | None = None,
) -> ModelBundle:
    """The systems of ``anchor`` (an earlier step's fit) with their models fitted anew on ``training`` (every
    row, no holdout fit), each keeping what the anchor learned out of sample: its spread, the ensemble's weights
    (:meth:`~nbaprops.systems.base.PredictionSystem.refit`); the systems in ``kept`` are served as they are. No
    calibrators yet: :func:`inherit_calibration` gives the anchor's. The walk-forward backtest's steps between
    two holdout fits (the ensemble blends the refitted components with its weights, market_blend corrects the line
    from the refitted gbm by the correction it learned).
    """
    market = anchor.market
    start, actual, digest = _window(training, market, through, train_days)
    fitted: dict[str, PredictionSystem] = {}
    for sid, system in anchor.systems.items():  # in fitting order: components before what is built on them
        version = f"{sid}@{market}-{through:%Y%m%d}-{digest}"
        if kept is not None and sid in kept:
            fitted[sid] = kept[sid]
        else:
            fitted[sid] = system.refit(training, actual, version=version, components=fitted)
    meta = {"digest": digest, "train_days": train_days, "holdout_from": anchor.through.isoformat()}
    return ModelBundle(market, through, start, fitted, {}, meta)


def inherit_calibration(bundle: ModelBundle, anchor: ModelBundle, training: pa.Table) -> ModelBundle:
    """Complete a :func:`refit_market` bundle (fitted on ``training``) with the calibrators and the holdout
    figures of its ``anchor`` (calibrated by :func:`calibrate_holdout`), and write its meta."""
    bundle.calibrators = dict(anchor.calibrators)
    bundle.meta = {
        **anchor.meta,
        "through": bundle.through.isoformat(),
        "train_start": bundle.train_start.isoformat(),
        "training_rows": training.num_rows,
        "digest": bundle.meta["digest"],
        "holdout_from": bundle.meta["holdout_from"],
        "systems": {
            sid: {**anchor.meta["systems"][sid], "model_version": system.version_}
            for sid, system in bundle.systems.items()
        },
    }
    return bundle


def calibrate_holdout(storage: Inputs, bundle: ModelBundle, training: pa.Table) -> ModelBundle:
    """Calibrate each system of ``bundle`` (fitted on ``training``) on its held-out rows that had a real line,
    and write the bundle's meta."""
    market, through, start = bundle.market, bundle.through, bundle.train_start
    train_days, digest = bundle.meta["train_days"], bundle.meta["digest"]
    fitted = bundle.systems
    actual = np.asarray(
        training.column(f"actual_{MARKET_STAT[market]}").to_numpy(zero_copy_only=False), dtype=np.float64
    )
    # Out-of-time calibration on the held-out rows that had a line.
    calibrators: dict[str, Calibrator] = {}
    meta_systems: dict[str, Any] = {}
    any_system = next(iter(fitted.values()))
    mask = any_system.holdout_mask_
    held = training.filter(pa.array(mask)) if mask.any() else training.slice(0, 0)
    lines = _holdout_lines(storage, held, market) if held.num_rows else None
    line_idx: tuple[np.ndarray, np.ndarray] | None = None
    if lines is not None:
        keys = {
            (d, p): i
            for i, (d, p) in enumerate(
                zip(
                    lines.column("game_date").to_pylist(),
                    lines.column("player_lookup").to_pylist(),
                    strict=True,
                )
            )
        }
        pairs = [
            (i, keys.get((d, p)))
            for i, (d, p) in enumerate(
                zip(
                    held.column("game_date").to_pylist(),
                    held.column("player_lookup").to_pylist(),
                    strict=True,
                )
            )
        ]
        hits = [(i, j) for i, j in pairs if j is not None]
        if hits:
            line_idx = (np.array([i for i, _ in hits]), np.array([j for _, j in hits]))
    for sid, system in fitted.items():
        cal = Calibrator()
        if line_idx is not None:
            rows, lrows = line_idx
            pred = system.holdout_pred_[rows]
            line = np.asarray(lines.column("line").to_numpy(zero_copy_only=False), dtype=np.float64)[lrows]  # type: ignore[union-attr]
            act = actual[mask][rows]
            z = standardized_edge(pred, system.spread_.std(pred), line)
            decided = act != line
            cal = Calibrator.fit(z[decided], (act[decided] > line[decided]).astype(float))
        calibrators[sid] = cal
        ho = system.holdout_pred_
        y_ho = actual[mask]
        ok = np.isfinite(ho) & np.isfinite(y_ho) if ho.size else np.zeros(0, bool)
        meta_systems[sid] = {
            "model_version": system.version_,
            "holdout_rows": int(ok.sum()),
            "holdout_mae": float(np.mean(np.abs(ho[ok] - y_ho[ok]))) if ok.any() else None,
            "spread_by_tier": {"edges": list(system.spread_.edges), "stds": list(system.spread_.stds)},
            "calibration": cal.summary(),
            **(
                {"weights": dict(zip(COMPONENTS, map(float, system.weights_), strict=True))}  # type: ignore[attr-defined]
                if sid == "ensemble"
                else {}
            ),
            **({"blend": _blend_meta(system)} if isinstance(system, MarketBlend) else {}),
        }
    meta = {
        "market": market,
        "through": through.isoformat(),
        "train_start": start.isoformat(),
        "train_days": train_days,
        "training_rows": training.num_rows,
        "feature_version": FEATURE_VERSION,
        "calibration_version": CALIBRATION_VERSION,
        "digest": digest,
        "systems": meta_systems,
    }
    bundle.calibrators, bundle.meta = calibrators, meta
    return bundle


def _blend_meta(system: MarketBlend) -> dict[str, Any]:
    """What a fitted market_blend learned: its correction of the line and the validation that allowed it."""
    return {
        "coef": [float(c) for c in system.coef_],
        "intercept": float(system.intercept_),
        "lined_rows": system.lined_rows_,
        "validation": system.validation_,
    }


def bundle_dir(artifacts_dir: Path, market: str, through: date) -> Path:
    return artifacts_dir / market / through.isoformat()


def save_bundle(bundle: ModelBundle, artifacts_dir: Path) -> Path:
    """Write the bundle atomically (a temp directory renamed into place)."""
    target = bundle_dir(artifacts_dir, bundle.market, bundle.through)
    tmp = target.with_name(target.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    with (tmp / BUNDLE_FILE).open("wb") as handle:
        pickle.dump(bundle, handle, protocol=pickle.HIGHEST_PROTOCOL)
    meta = {**bundle.meta, "saved_at": datetime.now(UTC).isoformat(timespec="seconds")}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    if target.exists():
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
    tmp.rename(target)
    bundle.path = target
    return target


def load_latest(
    artifacts_dir: Path, market: str, before: date, *, system_ids: list[str] | None = None
) -> ModelBundle | None:
    """The newest bundle of ``market`` trained only on games before ``before`` (its ``through`` <= ``before``)
    that holds every system of ``system_ids``; ``None`` when there is none."""
    root = artifacts_dir / market
    if not root.is_dir():
        return None
    candidates = []
    for child in root.iterdir():
        try:
            through = date.fromisoformat(child.name)
        except ValueError:
            continue
        if through <= before and (child / BUNDLE_FILE).exists():
            candidates.append((through, child))
    for _, path in sorted(candidates, reverse=True):
        try:
            with (path / BUNDLE_FILE).open("rb") as handle:
                bundle = pickle.load(handle)
        except Exception as exc:  # a corrupt artifact is reported, never silently used
            raise ArtifactError(f"cannot read artifact {path}: {exc}") from exc
        if not isinstance(bundle, ModelBundle):
            raise ArtifactError(f"{path} does not hold a model bundle")
        if bundle.meta.get("feature_version", FEATURE_VERSION) != FEATURE_VERSION:
            continue  # trained on other feature definitions: its columns no longer match (retrained instead)
        if bundle.meta.get("calibration_version") != CALIBRATION_VERSION:
            # Older calibrators map raw P(over) freely (they could bet against the edge): train anew instead.
            log.info(
                "skipping %s: calibration version %s, current %s",
                path,
                bundle.meta.get("calibration_version"),
                CALIBRATION_VERSION,
            )
            continue
        if system_ids is None or all(s in bundle.systems for s in system_ids):
            bundle.path = path
            return bundle
    return None


def ensure_bundles(
    storage: Inputs,
    settings: Settings,
    game_date: date,
    markets: Sequence[str],
    systems: Sequence[str],
    *,
    train_days: int | None = None,
    on_message: Callable[[str], None] | None = None,
) -> dict[str, ModelBundle]:
    """The newest artifacts per market trained only on games before ``game_date``.

    Trains them first (and says so through ``on_message``) when there are none, or when the newest is older
    than ``settings.model_max_age_days`` (a model trained through last March must not predict this March).
    """
    days = settings.train_days if train_days is None else train_days
    bundles = {}
    for market in markets:
        bundle = load_latest(settings.artifacts_dir, market, game_date, system_ids=list(systems))
        age = None if bundle is None else (game_date - bundle.through).days
        if bundle is None or (age is not None and age > settings.model_max_age_days):
            if on_message:
                why = (
                    f"No {market} model trained before {game_date} for {', '.join(systems)}"
                    if bundle is None
                    else f"The newest {market} model was trained through {bundle.through}, {age} days before "
                    f"{game_date} (model_max_age_days is {settings.model_max_age_days})"
                )
                on_message(
                    f"{why}: training on the {days} days before {game_date} "
                    f"(stored in {settings.artifacts_dir})."
                )
            bundle = train_market(
                storage, market, game_date, system_ids=systems_to_fit(list(systems)), train_days=days
            )
            save_bundle(bundle, settings.artifacts_dir)
            bundle.meta["trained_now"] = True  # after saving: a loaded artifact was not trained now
        bundles[market] = bundle
    return bundles


def model_info(bundle: ModelBundle, game_date: date) -> dict[str, Any]:
    """What a batch reports of the model it used: where, its training window, its age on the date, and why
    any system's rows are never bet (its calibration found no relation between edge and outcome)."""
    return {
        "path": str(bundle.path) if bundle.path else None,
        "train_start": bundle.train_start.isoformat(),
        "trained_through": bundle.through.isoformat(),
        "age_days": (game_date - bundle.through).days,
        "trained_now": bool(bundle.meta.get("trained_now", False)),
        "no_bets": {sid: cal.reason for sid, cal in bundle.calibrators.items() if not cal.allows_bets},
    }
