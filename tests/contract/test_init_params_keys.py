"""`churn init` stays in step with the project: the keys it writes exist in the params model, and
the demo state it deletes is what `make reset` removes."""

from __future__ import annotations

import re

import yaml

from churn.config import IngestParams, parse_params
from churn.init import InitOptions, plan_init
from churn.init.project import DEMO_STATE
from support.init_data import cdnow_like, write_semicolon_dayfirst


def _keys(data: dict, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out = set()
    for key, value in data.items():
        out.add((*prefix, key))
        if isinstance(value, dict):
            out |= _keys(value, (*prefix, key))
    return out


def test_init_writes_only_keys_the_params_model_has(project_root, tmp_path):
    for name in ("params.yaml", "dvc.yaml"):
        (tmp_path / name).write_text((project_root / name).read_text())
    source = write_semicolon_dayfirst(cdnow_like(), tmp_path / "tx.csv")
    plan = plan_init(InitOptions(str(source)), tmp_path / "params.yaml", tmp_path / "dvc.yaml")
    old = yaml.safe_load(plan.params_old)
    new = yaml.safe_load(plan.params_new)
    assert _keys(new) <= _keys(old)  # no key the project's params.yaml lacks
    assert set(new) == set(old)  # every section stays: `churn check` wants them all
    assert {k for k in new["ingest"]} <= set(IngestParams.model_fields)
    parse_params(new)


def test_demo_state_is_what_make_reset_removes(project_root):
    makefile = (project_root / "Makefile").read_text()
    recipe = re.search(r"^reset:\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    removed = set(recipe.replace("\\\n", " ").split()) - {"rm", "-rf"}
    # data/raw: make reset removes the folder; init only the generate stage's outputs in it
    assert removed - {"data/raw"} == set(DEMO_STATE)
