"""dvc.yaml, the CLI and the params model stay in step: one name per stage in all three."""

from __future__ import annotations

import shlex

import yaml

from churn.cli import app
from churn.config import Params, load_params


def _stages(project_root):
    return yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"]


def _commands():
    return {command.name or command.callback.__name__ for command in app.registered_commands}


def test_every_stage_runs_its_own_churn_subcommand(project_root):
    commands = _commands()
    for name, stage in _stages(project_root).items():
        argv = shlex.split(stage["cmd"])
        assert argv[:2] == ["churn", name], f"stage {name} must run `churn {name}`"
        assert name in commands, f"stage {name} has no CLI command"


def test_every_stage_declares_params_sections_or_keys_that_exist(project_root):
    sections = set(Params.model_fields)
    for name, stage in _stages(project_root).items():
        declared = stage.get("params", [])
        for entry in declared:
            assert isinstance(entry, str), f"stage {name}: params entry {entry!r} is not a name"
            section, _, key = entry.partition(".")
            assert section in sections, f"stage {name}: params section {section!r} is not in Params"
            if key:
                # one key of another stage's section (e.g. train reads promote.ece_bins)
                fields = Params.model_fields[section].annotation.model_fields
                assert key in fields and "." not in key, (
                    f"stage {name}: {entry!r} is not a key of params section {section!r}"
                )
        if name in sections:
            assert name in declared, f"stage {name} must declare its own params section"


def test_params_yaml_spells_out_every_section(project_root):
    raw = yaml.safe_load((project_root / "params.yaml").read_text())
    assert set(raw) == set(Params.model_fields)
    load_params(project_root / "params.yaml")


def test_stage_sources_are_dependencies(project_root):
    for name, stage in _stages(project_root).items():
        deps = stage.get("deps", [])
        assert any(str(dep).startswith("src/churn/") for dep in deps), (
            f"stage {name} must depend on its code under src/churn/"
        )
