"""`churn init` stays in step with the project: the keys it writes exist in the params model, and
the demo state it deletes is what `make reset` removes and what dvc.yaml's stages write."""

from __future__ import annotations

import re
import shlex

import yaml

from churn.config import IngestParams, parse_params
from churn.init import InitOptions, plan_init
from churn.init.project import DEMO_STAGE, DEMO_STATE, GENERATED
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


# State a demo run leaves outside DVC's outputs, each where dvc.yaml's commands name it or kept by
# the tools themselves (documented in README "Using your own data").
OUTSIDE_DVC = {
    "mlflow.db": "the MLflow registry and runs (default tracking store)",
    "mlartifacts": "MLflow's model artifacts",
    "dvc_plots": "`dvc plots show` output",
}
# The evaluate stage logs into the training run: without its outputs it reruns with train after
# a reset (a fresh mlflow.db), so its reports go too; the other reports/ outputs are committed.
RERUN_WITH_TRAIN = ("evaluate",)


def _dvc_outputs(project_root) -> dict[str, list[str]]:
    stages = yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"]
    outputs = {}
    for name, stage in stages.items():
        paths = []
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
        outputs[name] = paths
    return outputs


def _command_paths(project_root) -> set[str]:
    """Every path-like word of dvc.yaml's commands (outputs, and state outside DVC: --exports,
    --state)."""
    stages = yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"]
    return {
        word
        for stage in stages.values()
        for word in shlex.split(" ".join(str(stage["cmd"]).split()))
        if "/" in word
    }


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def test_demo_state_lists_only_what_the_pipeline_writes(project_root):
    outputs = [p for paths in _dvc_outputs(project_root).values() for p in paths]
    named = _command_paths(project_root)
    for entry in DEMO_STATE:
        holds_outputs = any(_within(output, entry) for output in outputs)
        # e.g. exports/at_risk (--exports) and .churn (--state .churn/...)
        named_by_a_command = any(_within(path, entry) for path in named)
        assert holds_outputs or named_by_a_command or entry in OUTSIDE_DVC, (
            f"DEMO_STATE/make reset: {entry} is no dvc.yaml output, no path a stage command "
            "names and no documented state outside DVC: remove it (nothing writes it)"
        )


def test_demo_state_covers_every_output_of_the_pipeline(project_root):
    outputs = _dvc_outputs(project_root)
    assert sorted(GENERATED) == sorted(outputs[DEMO_STAGE]), (
        f"GENERATED must be the {DEMO_STAGE} stage's outputs in dvc.yaml"
    )
    for name, paths in outputs.items():
        for path in paths:
            if name == DEMO_STAGE or (path.startswith("reports/") and name not in RERUN_WITH_TRAIN):
                continue  # generated files: GENERATED; committed reports stay
            assert any(_within(path, entry) for entry in DEMO_STATE), (
                f"stage {name} writes {path}, which DEMO_STATE and `make reset` leave behind"
            )
