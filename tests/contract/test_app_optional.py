"""The page's web framework is an optional extra: `import churn` and the CLI never need it."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from support.paths import ROOT

WEB = ("fastapi", "starlette", "uvicorn", "jinja2")


def test_churn_and_the_page_logic_import_without_the_web_framework():
    code = (
        "import sys\n"
        "import churn, churn.cli, churn.app.selection, churn.app.whatif, churn.app.history\n"
        "import churn.app.security, churn.app.service, churn.app.store\n"
        f"loaded = [m for m in {WEB!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_app_extra_names_the_web_framework_and_the_lock_pins_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = project["project"]["optional-dependencies"]["app"]
    names = {requirement.split(">")[0].split("=")[0].split("[")[0].strip() for requirement in extra}
    assert {"fastapi", "uvicorn", "jinja2"} <= names
    lock = (ROOT / "requirements.lock").read_text()
    for name in names:
        assert f"\n{name}==" in lock, f"{name} is in the app extra but not in requirements.lock"
