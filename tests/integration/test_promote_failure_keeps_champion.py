"""Under `dvc repro`, a promote stage that fails leaves `models/champion` as it was: the folder
`score` reads is declared `persist: true`, so DVC does not delete it before rerunning the stage."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from support.dvc_project import copy_pipeline, pipeline_env
from support.snapshot_helper import QUICK_LIGHTGBM

# a `dvc repro` up to promote on 700 customers: minutes on a shared 2-core machine
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("CHURN_SLOW_TESTS"),
        reason="a pipeline run up to promote; set CHURN_SLOW_TESTS=1",
    ),
]


def _folder_bytes(folder):
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_failing_promote_under_dvc_repro_keeps_the_champion_folder(tmp_path, project_root):
    root = tmp_path / "project"
    params = copy_pipeline(project_root, root)
    params["generate"].update({"customers": 700, "days": 900, "dirty_share": 0.001})
    params["train"]["lightgbm"].update(QUICK_LIGHTGBM)  # what is tested is the pipeline
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = pipeline_env(root)

    def repro(environ):
        return subprocess.run(
            ["dvc", "repro", "promote"], cwd=root, env=environ, capture_output=True, text=True,
            timeout=1200,
        )  # fmt: skip

    first = repro(env)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    champion = root / "models" / "champion"
    before = _folder_bytes(champion)
    assert before  # the first run wrote the folder score reads

    # the registry cannot be opened (its folder is a file): promote (always_changed, so it
    # reruns) fails whatever models/champion holds
    (tmp_path / "not_a_folder").write_text("")
    broken = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/not_a_folder/mlflow.db"}
    second = repro(broken)
    output = second.stdout + second.stderr
    assert second.returncode != 0, output[-3000:]
    assert "Running stage 'promote'" in output and "failed to reproduce 'promote'" in output
    assert _folder_bytes(champion) == before
