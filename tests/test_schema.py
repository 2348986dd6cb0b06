"""Schema drift as a pure plan (:func:`nbaprops.schema.plan_drift`, STYLE.md convention 5).

The main table only ever gains columns: every staged column is inserted (added to main first when main lacks
it), main columns the staging lacks stay NULL, and only a missing *required* column is fatal.

Mutations tried in ``plan_drift``, each failing here: insert columns in staging order instead of main's;
added columns left out of the insert list; types compared case-sensitively; a missing required column
ignored; added columns declared NOT NULL.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbaprops.errors import ContractError
from nbaprops.schema import Column, plan_drift

MAIN = {
    "prediction_id": "VARCHAR",
    "player_lookup": "VARCHAR",
    "predicted_value": "DOUBLE",
    "line_value": "DOUBLE",
}


@pytest.mark.parametrize(
    ("staging", "insert", "added", "missing", "mismatches"),
    [
        (MAIN, tuple(MAIN), (), (), ()),
        (dict(reversed(MAIN.items())), tuple(MAIN), (), (), ()),
        ({**MAIN, "new_signal": "DOUBLE"}, (*MAIN, "new_signal"), (("new_signal", "DOUBLE"),), (), ()),
        ({k: v for k, v in MAIN.items() if k != "line_value"}, tuple(MAIN)[:3], (), ("line_value",), ()),
        ({**MAIN, "predicted_value": "double"}, tuple(MAIN), (), (), ()),
        (
            {**MAIN, "predicted_value": "FLOAT"},
            tuple(MAIN),
            (),
            (),
            (("predicted_value", "FLOAT", "DOUBLE"),),
        ),
        (
            {"note": "VARCHAR", "prediction_id": "VARCHAR", "line_value": "INTEGER"},
            ("prediction_id", "line_value", "note"),
            (("note", "VARCHAR"),),
            ("player_lookup", "predicted_value"),
            (("line_value", "INTEGER", "DOUBLE"),),
        ),
    ],
    ids=["same", "reordered", "extra column", "fewer columns", "type case", "other type", "all at once"],
)
def test_plan_drift(
    staging: dict[str, str],
    insert: tuple[str, ...],
    added: tuple[tuple[str, str], ...],
    missing: tuple[str, ...],
    mismatches: tuple[tuple[str, str, str], ...],
) -> None:
    plan = plan_drift(staging, MAIN, required=("prediction_id",))
    assert plan.insert_columns == insert
    assert [(c.name, c.type, c.nullable) for c in plan.add_to_main] == [(n, t, True) for n, t in added]
    assert plan.missing_in_staging == missing
    assert plan.type_mismatches == mismatches
    assert plan.has_drift == bool(added or missing or mismatches)


def test_a_missing_required_column_is_refused_by_name() -> None:
    staging = {k: v for k, v in MAIN.items() if k not in ("prediction_id", "player_lookup")}
    with pytest.raises(
        ContractError, match="staging lacks required column\\(s\\) prediction_id, player_lookup"
    ):
        plan_drift(staging, MAIN, required=("prediction_id", "player_lookup"))
    assert plan_drift(staging, MAIN).missing_in_staging == ("prediction_id", "player_lookup")


NAMES = st.sampled_from(["a", "b", "c", "d", "e", "f"])
TYPES = st.sampled_from(["INTEGER", "integer", "DOUBLE", "VARCHAR"])


@given(staging=st.dictionaries(NAMES, TYPES), main=st.dictionaries(NAMES, TYPES))
def test_every_staged_column_lands_and_main_loses_nothing(
    staging: dict[str, str], main: dict[str, str]
) -> None:
    plan = plan_drift(staging, main)
    assert sorted(plan.insert_columns) == sorted(staging)  # common ones and added ones, each once
    assert plan.insert_columns[: len(staging.keys() & main.keys())] == tuple(n for n in main if n in staging)
    assert {c.name: c.type for c in plan.add_to_main} == {n: t for n, t in staging.items() if n not in main}
    assert all(isinstance(c, Column) and c.nullable for c in plan.add_to_main)
    assert plan.missing_in_staging == tuple(n for n in main if n not in staging)
    assert {m[0] for m in plan.type_mismatches} == {
        n for n in staging.keys() & main.keys() if staging[n].upper() != main[n].upper()
    }
