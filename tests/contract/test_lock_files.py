"""The two lock files: `make run` installs the runtime (requirements.lock, no Spark, no test tools),
the tests add requirements-dev.lock, and every runtime pin is the same in both."""

from __future__ import annotations

import re
import tomllib

from support.paths import ROOT

DEV_STAMP = ".venv/.installed-dev"
# pyspark alone is about 490 MB: the reason for two lock files (issue 14)
NEVER_IN_RUNTIME = {"pyspark", "deltalake"}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _normalize(re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0])


def _pins(lock_name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Return {package: (version, hashes)} of a uv-compiled, hash-locked requirements file."""
    pins: dict[str, tuple[str, set[str]]] = {}
    name = None
    for line in (ROOT / lock_name).read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)", line)
        if pin:
            name = _normalize(pin.group(1))
            assert name not in pins, f"{lock_name}: {name} is pinned twice"
            pins[name] = (pin.group(2), set())
            continue
        digest = re.search(r"--hash=(sha256:[0-9a-f]{64})", line)
        if digest:
            assert name is not None, f"{lock_name}: a hash before any pin: {line!r}"
            pins[name][1].add(digest.group(1))
    return {name: (version, frozenset(hashes)) for name, (version, hashes) in pins.items()}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _makefile_rules() -> tuple[dict[str, str], dict[str, list[str]], dict[str, str]]:
    """Return the Makefile's `:=` variables, each target's prerequisites and each target's recipe,
    with the variables expanded."""
    variables: dict[str, str] = {}
    prerequisites: dict[str, list[str]] = {}
    recipes: dict[str, str] = {}

    def expand(text: str) -> str:
        for _ in range(5):
            text = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), text)
        return text

    target = None
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t"):
            if target is not None:
                recipes[target] += line + "\n"
            continue
        target = None
        assignment = re.match(r"^(\w+)\s*:?=\s*(.*)$", line)
        if assignment:
            variables[assignment.group(1)] = expand(assignment.group(2).strip())
            continue
        rule = re.match(r"^([^\s:#=][^:=]*):(?!=)\s*(.*)$", line)
        if rule and not rule.group(1).startswith("."):
            target = expand(rule.group(1).strip())
            prerequisites[target] = expand(rule.group(2)).split()
            recipes[target] = ""
    return variables, prerequisites, recipes


def _needs(target: str, prerequisites: dict[str, list[str]]) -> set[str]:
    """Return every target and file that `target` depends on, directly or through others."""
    seen: set[str] = set()
    todo = list(prerequisites.get(target, []))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(prerequisites.get(name, []))
    return seen


def test_the_runtime_lock_has_no_spark_and_nothing_only_the_dev_or_spark_extras_need():
    project = _project()
    extras = project["project"]["optional-dependencies"]
    runtime_names = {_requirement_name(r) for r in project["project"]["dependencies"]}
    runtime_names |= {_requirement_name(r) for r in extras["app"]}
    # setuptools: the Makefile installs churn with --no-build-isolation, so the build backend
    # belongs in the runtime venv (test_the_runtime_lock_can_build_the_project)
    build = {_requirement_name(r) for r in project["build-system"]["requires"]}
    extra_only = {_requirement_name(r) for r in extras["dev"] + extras["spark"]}
    extra_only -= runtime_names | build
    runtime = _pins("requirements.lock")
    leaked = sorted((extra_only | NEVER_IN_RUNTIME) & set(runtime))
    assert not leaked, (
        f"requirements.lock (what `make run` installs) pins {leaked}, which only the dev or spark "
        "extras name; compile it with `make lock` (--extra app only, no --extra dev), or, when the "
        "runtime needs one too, name it in [project] dependencies"
    )
    missing = sorted((runtime_names | build) - set(runtime))
    assert not missing, (
        f"requirements.lock lacks {missing} (pyproject.toml needs them); run `make lock`"
    )


def test_the_runtime_lock_can_build_the_project():
    build = {_requirement_name(r) for r in _project()["build-system"]["requires"]}
    assert build <= set(_pins("requirements.lock")), (
        f"requirements.lock lacks the build backend {sorted(build)}; the Makefile installs churn "
        "with --no-build-isolation from the runtime venv"
    )


def test_every_runtime_pin_is_the_same_in_the_dev_lock():
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert runtime and dev
    missing = sorted(set(runtime) - set(dev))
    assert not missing, (
        f"requirements-dev.lock lacks {missing} of requirements.lock; run `make lock`"
    )
    differ = {
        name: (runtime[name][0], dev[name][0])
        if runtime[name][0] != dev[name][0]
        else "the same version, other hashes"
        for name in runtime
        if runtime[name] != dev[name]
    }
    assert not differ, (
        f"pinned differently in requirements.lock and requirements-dev.lock: {differ}; "
        "run `make lock` (the runtime lock is compiled against the dev lock's pins)"
    )


def test_the_dev_lock_has_every_extra_the_tests_need():
    extras = _project()["project"]["optional-dependencies"]
    needed = {_requirement_name(r) for r in extras["dev"] + extras["spark"] + extras["app"]}
    missing = sorted(needed - set(_pins("requirements-dev.lock")))
    assert not missing, f"requirements-dev.lock lacks {missing}; run `make lock`"


def test_make_run_installs_only_the_runtime_and_make_test_the_dev_lock():
    variables, prerequisites, recipes = _makefile_rules()
    stamp = variables["STAMP"]
    assert variables["DEV_STAMP"] == DEV_STAMP
    for target in ("run", "app"):
        assert stamp in _needs(target, prerequisites), f"make {target} does not create the venv"
        assert DEV_STAMP not in _needs(target, prerequisites), (
            f"make {target} depends on {DEV_STAMP}: it would install pyspark and the test tools"
        )
    for target in ("test", "test-fast", "lint", "format"):
        assert DEV_STAMP in _needs(target, prerequisites), f"make {target} lacks the dev lock"
    assert "-r requirements.lock" in recipes[stamp]
    assert "requirements-dev.lock" not in recipes[stamp]
    assert "-r requirements-dev.lock" in recipes[DEV_STAMP]
    assert "requirements-dev.lock" in prerequisites[DEV_STAMP]
