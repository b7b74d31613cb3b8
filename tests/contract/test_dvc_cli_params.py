"""dvc.yaml, the CLI and the params model stay in step: one name per stage in all three, paths
written once (in dvc.yaml), params read only as declared, and deps that cover the code a stage runs.
"""

from __future__ import annotations

import ast
import inspect
import shlex
from pathlib import Path

import typer
import yaml

from churn.cli import STAGE_PARAMS, app
from churn.config import Params, load_params

SRC = Path(__file__).resolve().parents[2] / "src"
# The entry point's own wiring is not a stage dependency (every stage would rerun on any CLI edit);
# everything a command imports is.
NOT_DEPENDENCIES = {"churn/cli.py", "churn/__init__.py", "churn/__main__.py"}


def _stages(project_root):
    return yaml.safe_load((project_root / "dvc.yaml").read_text())["stages"]


def _commands():
    return {
        command.name or command.callback.__name__: command for command in app.registered_commands
    }


def _argv(stage):
    return shlex.split(" ".join(str(stage["cmd"]).split()))


def test_every_stage_runs_its_own_churn_subcommand(project_root):
    commands = _commands()
    for name, stage in _stages(project_root).items():
        assert _argv(stage)[:2] == ["churn", name], f"stage {name} must run `churn {name}`"
        assert name in commands, f"stage {name} has no CLI command"


def test_the_stage_commands_come_in_pipeline_order(project_root):
    # cli.py reads top to bottom as dvc.yaml runs; the commands outside DVC come after
    stages = list(_stages(project_root))
    registered = [command.name or command.callback.__name__ for command in app.registered_commands]
    assert [name for name in registered if name in stages] == stages
    last_stage = max(registered.index(name) for name in stages)
    assert registered[last_stage + 1 :] == [n for n in registered if n not in stages and n not in (
        "check", "init", "generate"
    )]  # fmt: skip


def test_stages_declare_exactly_the_params_sections_their_command_reads(project_root):
    stages = _stages(project_root)
    for name, sections in STAGE_PARAMS.items():
        assert name in stages, f"STAGE_PARAMS names {name}, which is not a dvc.yaml stage"
        assert list(stages[name].get("params", [])) == list(sections), (
            f"stage {name}: dvc.yaml params {stages[name].get('params')} != the sections "
            f"`churn {name}` reads {list(sections)}"
        )
    for name, stage in stages.items():
        if stage.get("params"):
            assert name in STAGE_PARAMS, f"stage {name} declares params but reads none"
        for declared in stage.get("params", []):
            section, _, key = declared.partition(".")  # a whole section, or `section.key`
            assert section in Params.model_fields, f"stage {name}: no params section {section!r}"
            if key:
                fields = Params.model_fields[section].annotation.model_fields
                assert key in fields, f"stage {name}: no params key {declared!r}"


def test_a_stage_reading_an_undeclared_section_fails(project_root):
    view = load_params(project_root / "params.yaml").select("churn", "train")
    assert view.train.seed == 42
    try:
        view.features  # noqa: B018 - the read itself is the test
    except AttributeError as error:
        assert "not declared for this stage" in str(error)
    else:
        raise AssertionError("reading an undeclared section must fail")


def test_params_yaml_spells_out_every_section(project_root):
    raw = yaml.safe_load((project_root / "params.yaml").read_text())
    assert set(raw) == set(Params.model_fields)
    load_params(project_root / "params.yaml")


def test_every_stage_depends_on_the_params_check_first(project_root):
    stages = _stages(project_root)
    stamp = stages["check"]["outs"][0]
    stamp = next(iter(stamp)) if isinstance(stamp, dict) else stamp
    assert list(stages)[0] == "check"
    for name, stage in stages.items():
        if name != "check":
            assert stamp in stage["deps"], f"stage {name} must depend on {stamp} (params check)"


def _outputs(stage) -> set[str]:
    paths = set()
    for kind in ("outs", "metrics", "plots"):
        for entry in stage.get(kind, []):
            paths.add(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


def test_every_path_in_a_stage_command_is_a_declared_dependency_or_output(project_root):
    """Paths live in dvc.yaml: what a command reads or writes is what DVC tracks for it."""
    group = typer.main.get_command(app)
    for name, stage in _stages(project_root).items():
        command = group.commands[name]
        options = command.make_context(name, _argv(stage)[2:], resilient_parsing=True).params
        declared = {str(d) for d in stage.get("deps", [])} | _outputs(stage)
        for option, value in options.items():
            if not isinstance(value, Path) or option == "params":
                continue
            text = str(value)
            covered = text in declared or any(
                path.startswith(text.rstrip("/") + "/") or text.startswith(path.rstrip("/") + "/")
                for path in declared
            )
            # ingest's state file and SQL copies folder, and the hashes `sources` keeps between
            # runs, are outside DVC's outputs on purpose
            if name in ("ingest", "sources") and option in ("state", "sql_copies"):
                continue
            # the backtest report is written after publish, outside DVC
            if name == "report" and option == "backtest":
                continue
            # the published-lists record lives outside DVC (publish and import-lists write it;
            # the ledger stage only reads it, and promote reads it to tell a lost registry from a
            # first run: both always_changed)
            if name in ("ledger", "promote") and option == "exports":
                continue
            assert covered, f"stage {name}: --{option} {text} is neither a dep nor an output"


def test_the_commands_outside_dvc_find_the_record_and_backtest_where_dvc_yaml_names_them(
    project_root,
):
    """exports/at_risk and reports/backtest.json are named in dvc.yaml only: every stage names the
    same record, and publish, at-risk, app, backtest and retrain read both from there."""
    from churn import pipeline

    group = typer.main.get_command(app)
    named: dict[str, set[str]] = {"exports": set(), "backtest": set()}
    for name, stage in _stages(project_root).items():
        options = group.commands[name].make_context(name, _argv(stage)[2:], resilient_parsing=True)
        for option in named:
            if options.params.get(option) is not None:
                named[option].add(str(options.params[option]))
    assert len(named["exports"]) == 1, f"stages name different records: {named['exports']}"
    assert len(named["backtest"]) == 1, f"stages name different backtests: {named['backtest']}"
    assert pipeline.exports_path(project_root) == project_root / named["exports"].pop()
    assert pipeline.backtest_report_path(project_root) == project_root / named["backtest"].pop()


# Literals that may equal a path dvc.yaml names: the default of every command's --params, and
# params.yaml's own default for ingest.source (a params value that params.yaml spells out).
# churn/init/project.py lists the demo's outputs (checked against dvc.yaml in
# tests/contract/test_init_params_keys.py).
PATH_LITERALS_ALLOWED = {"params.yaml", "churn/config.py:data/raw/transactions.csv.gz"}


def _dvc_yaml_paths(project_root) -> set[str]:
    paths = set()
    for stage in _stages(project_root).values():
        paths |= {str(d) for d in stage.get("deps", [])} | _outputs(stage)
        paths |= {word for word in _argv(stage)[2:] if "/" in word}
    return {p.rstrip("/") for p in paths if not p.startswith("src/")}


def test_no_module_repeats_a_path_that_dvc_yaml_names(project_root):
    """A path written in dvc.yaml and again in the code (cli.EXPORTS, lifecycle.BACKTEST_REPORT
    were) can drift from it; the code asks dvc.yaml (churn.pipeline) or takes it as an option."""
    paths = _dvc_yaml_paths(project_root)
    for file in sorted(SRC.rglob("*.py")):
        module = str(file.relative_to(SRC))
        if module == "churn/init/project.py":
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            text = node.value.rstrip("/")
            if text in paths and not {text, f"{module}:{text}"} & PATH_LITERALS_ALLOWED:
                raise AssertionError(
                    f"src/{module}:{node.lineno}: {node.value!r} repeats a path dvc.yaml names; "
                    "read it with churn.pipeline.stage_path or pass it as an option"
                )


def test_stage_commands_have_no_path_defaults():
    """A path default in the CLI could drift from dvc.yaml; stage commands take every path."""
    for name, command in _commands().items():
        if name not in STAGE_PARAMS and name != "check":
            continue
        for parameter in inspect.signature(command.callback).parameters.values():
            if parameter.name == "params":
                continue
            default = parameter.default
            info = getattr(default, "default", default)
            assert not isinstance(info, Path), f"`churn {name} --{parameter.name}` has a default"


# --------------------------------------------------------------------------- deps cover imports
def _module_file(module: str) -> str | None:
    parts = module.split(".")
    for candidate in ("/".join(parts) + ".py", "/".join(parts) + "/__init__.py"):
        if (SRC / candidate).is_file():
            return candidate
    return None


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("churn"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("churn"):
            found.add(node.module)
            # `from churn.x import y` where y is a submodule
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _closure(modules: set[str]) -> set[str]:
    files: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        parts = module.split(".")
        # importing a.b.c runs the __init__ of a and a.b too
        for i in range(2, len(parts) + 1):
            path = _module_file(".".join(parts[:i]))
            if path is None or path in files:
                continue
            files.add(path)
            todo.extend(_imports(ast.parse((SRC / path).read_text())))
    return files


def _cli_functions(cli_tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {node.name: node for node in cli_tree.body if isinstance(node, ast.FunctionDef)}


def _called_helpers(name: str, functions: dict[str, ast.FunctionDef]) -> list[ast.FunctionDef]:
    """The command function and every cli.py function it reaches, transitively (a helper such as
    `_production` imports what the command runs as surely as the command's own body does)."""
    reached: dict[str, ast.FunctionDef] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in reached:
            continue
        function = reached[current] = functions[current]
        # a parameter or local variable of the same name (`report`, `features`) is not the function
        local = {arg.arg for arg in ast.walk(function.args) if isinstance(arg, ast.arg)} | {
            node.id
            for node in ast.walk(function)
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
        }
        todo.extend(
            node.id
            for node in ast.walk(function)
            if isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id in functions
            and node.id not in local
        )
    return list(reached.values())


def _command_imports(name: str) -> set[str]:
    cli_tree = ast.parse((SRC / "churn/cli.py").read_text())
    module_level = {
        node.module
        for node in cli_tree.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("churn")
    }
    reached = _called_helpers(name.replace("-", "_"), _cli_functions(cli_tree))
    # every command runs through churn.__main__.main, which pins the numerical kernels first
    # (churn.kernels): a change there changes every stage's numbers
    return module_level | set().union(*map(_imports, reached)) | {"churn.kernels"}


def test_stage_deps_cover_every_module_their_command_imports(project_root):
    for name, stage in _stages(project_root).items():
        deps = [str(d) for d in stage.get("deps", []) if str(d).startswith("src/")]
        needed = _closure(_command_imports(name)) - NOT_DEPENDENCIES
        missing = sorted(
            path
            for path in needed
            if not any(
                f"src/{path}" == dep or f"src/{path}".startswith(dep.rstrip("/") + "/")
                for dep in deps
            )
        )
        assert not missing, f"stage {name}: deps miss {missing} (imported when it runs)"
