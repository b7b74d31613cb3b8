"""What `churn init` changes in a project: params.yaml keys and dvc.yaml lines edited in place
(comments and layout kept, every edit checked by parsing the result), and the demo's state to
delete (what `make reset` removes, never the user's own files)."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from churn.errors import ChurnError

# What the demo run leaves behind (the Makefile's `reset` target), data/raw apart: only the
# generate stage's own outputs are deleted there. Contract tests keep both lists equal and in step
# with dvc.yaml: every entry holds dvc.yaml outputs or is state outside DVC (registry, published
# record, run state), and every output outside the committed reports/ is covered.
DEMO_STATE = ("data/interim", "data/features", "data/scores", "data/ledger", "data/uplift",
              "models/challenger", "models/evaluation", "models/champion", "exports/at_risk",
              "mlflow.db", "mlartifacts", ".churn", "dvc_plots",
              # evaluate logs into the training run: without its outputs it reruns with train
              "reports/metrics.json", "reports/segments.json", "reports/plots")  # fmt: skip
DEMO_STAGE = "generate"
GENERATED = (
    "data/raw/transactions.csv.gz",
    "data/raw/customers.csv",
    "data/raw/nps.csv",
    "data/raw/truth.parquet",
    "data/raw/campaign_lists.csv",
    "data/raw/contacts.csv",
    "data/raw/campaign_truth.parquet",
)  # fmt: skip  (used when the stage is already gone; a contract test keeps it = its outs)

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[^\s#:][^:#]*?):(?=\s|$)(?P<rest>.*)$")


# --------------------------------------------------------------------------- YAML values
def render_scalar(value: Any) -> str:
    """Return a YAML scalar for a value, quoted only when plain text would read differently."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {render_scalar(v)}" for k, v in value.items()) + "}"
    text = str(value)
    try:
        plain_ok = yaml.safe_load(f"k: {text}") == {"k": text} and len(text) > 1
    except yaml.YAMLError:
        plain_ok = False
    if plain_ok and not re.search(r"[\"'\\#]|^\s|\s$", text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _split_comment(rest: str) -> tuple[str, str]:
    """Split what follows `key:` into (value text, comment with its leading spaces)."""
    i, quote = 0, ""
    while i < len(rest):
        c = rest[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'" and not rest[:i].strip():
            quote = c
        elif c == "#" and (i == 0 or rest[i - 1] in " \t"):
            value = rest[:i]
            stripped = value.rstrip()
            return stripped, rest[len(stripped) :]
        i += 1
    return rest.rstrip(), ""


@dataclass
class _Line:
    number: int
    indent: int
    key: str


def _keys(lines: list[str]) -> list[_Line]:
    found = []
    for n, line in enumerate(lines):
        m = _KEY.match(line)
        if m and not line.lstrip().startswith("-"):
            found.append(_Line(n, len(m.group("indent")), m.group("key").strip()))
    return found


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Return the index after the block of the key at `start` (lines indented deeper, blank or
    comment lines inside it; trailing blank/comment lines belong to what follows)."""
    end = start + 1
    last = start
    while end < len(lines):
        text = lines[end]
        stripped = text.strip()
        if stripped and not stripped.startswith("#"):
            if len(text) - len(text.lstrip(" ")) <= indent:
                break
            last = end
        end += 1
    return last + 1


def _find(lines: list[str], path: tuple[str, ...]) -> tuple[int, int] | None:
    """Return (line index, indent) of a nested key, or None when absent."""
    lo, hi, indent = 0, len(lines), -1
    found = None
    for part in path:
        keys = [k for k in _keys(lines[lo:hi]) if k.indent > indent]
        if not keys:
            return None
        level = min(k.indent for k in keys)  # direct children only
        match = next((k for k in keys if k.key == part and k.indent == level), None)
        if match is None:
            return None
        n = lo + match.number
        indent = match.indent
        found = (n, indent)
        lo, hi = n + 1, _block_end(lines, n, indent)
    return found


def set_value(text: str, path: tuple[str, ...], value: Any) -> str:
    """Return YAML text with the key at `path` set to `value`, its comment and column kept; a
    block under the key is replaced; a missing key is added at the end of its parent."""
    lines = text.splitlines(keepends=True)
    place = _find(lines, path)
    if place is None:
        parent = _find(lines, path[:-1]) if len(path) > 1 else None
        if parent is None:
            raise ChurnError(f"params.yaml has no {'.'.join(path[:-1])} section to add to")
        n, indent = parent
        end = _block_end(lines, n, indent)
        children = [k for k in _keys(lines[n + 1 : end]) if k.indent > indent]
        child_indent = children[0].indent if children else indent + 2
        new = _render_key(path[-1], value, child_indent, "")
        if end and not lines[end - 1].endswith("\n"):
            lines[end - 1] += "\n"
        lines[end:end] = new
        return "".join(lines)
    n, indent = place
    m = _KEY.match(lines[n].rstrip("\n"))
    assert m is not None
    value_text, comment = _split_comment(m.group("rest"))
    end = _block_end(lines, n, indent)
    head = f"{m.group('indent')}{m.group('key')}:"
    if isinstance(value, dict) and value:
        new = [head + comment.rstrip() + "\n"]
        children = [k for k in _keys(lines[n + 1 : end]) if k.indent > indent]
        child_indent = children[0].indent if children else indent + 2
        for key, item in value.items():
            new += _render_key(key, item, child_indent, "")
    else:
        rendered = " " + render_scalar(value)
        if comment:
            # keep the comment's column when the new value fits before it
            width = len(value_text) + (len(comment) - len(comment.lstrip()))
            pad = max(width - len(rendered), 1)
            rendered += " " * pad + comment.lstrip()
        new = [head + rendered + "\n"]
    lines[n:end] = new
    return "".join(lines)


def _render_key(key: str, value: Any, indent: int, comment: str) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict) and value and any(isinstance(v, dict) for v in value.values()):
        out = [f"{pad}{key}:{comment}\n"]
        for k, v in value.items():
            out += _render_key(k, v, indent + 2, "")
        return out
    return [f"{pad}{key}: {render_scalar(value)}{comment}\n"]


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def edit_params(text: str, changes: dict[tuple[str, ...], Any], label: str) -> str:
    """Return params.yaml text with `changes` applied line by line; parse it to prove that
    exactly those keys changed (otherwise an error listing the keys to set by hand)."""
    keys = ", ".join(".".join(p) for p in changes)
    fix = f"{label}: could not edit it safely line by line (unusual layout); set these keys by hand: {keys}"
    new = text
    try:
        for path, value in changes.items():
            new = set_value(new, path, value)
    except ChurnError:
        raise ChurnError(fix) from None
    expected = yaml.safe_load(text) or {}
    for path, value in changes.items():
        target = expected
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    try:
        got = yaml.safe_load(new)
    except yaml.YAMLError:
        got = None
    if _plain(got) != _plain(expected):
        raise ChurnError(fix)
    return new


def _plain(data: Any) -> Any:
    """Return data with tuples as lists, so parsed YAML compares equal to intended values."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_plain(v) for v in data]
    return data


# --------------------------------------------------------------------------- dvc.yaml
def edit_pipeline(text: str, label: str) -> tuple[str, list[str]]:
    """Return dvc.yaml text without the demo stage, without deps on its outputs (the `sources`
    stage lists them only to run after it) and without options naming them (the ledger's demo
    contact log); and the demo stage's outputs (to delete)."""
    data = yaml.safe_load(text) or {}
    stages = data.get("stages", {})
    lines = text.splitlines(keepends=True)
    generated: list[str] = []
    place = _find(lines, ("stages", DEMO_STAGE))
    if place is not None:
        generated = [
            next(iter(o)) if isinstance(o, dict) else str(o)
            for o in stages[DEMO_STAGE].get("outs", [])
        ]
        n, indent = place
        end = _block_end(lines, n, indent)
        while end < len(lines) and not lines[end].strip():
            end += 1  # the blank lines after the stage go with it
        lines[n:end] = []
    demo_outputs = set(generated or GENERATED)
    drop: set[int] = set()
    for name in stages:
        deps = _find(lines, ("stages", name, "deps"))
        if deps is None:
            continue
        n, indent = deps
        for i in range(n + 1, _block_end(lines, n, indent)):
            if lines[i].strip().removeprefix("- ").strip() in demo_outputs:
                drop.add(i)
                j = i - 1  # a comment right above them is about them
                while j > n and lines[j].strip().startswith("#"):
                    drop.add(j)
                    j -= 1
    # an option naming a demo output (the ledger's `--contacts data/raw/contacts.csv`: the demo's
    # contact log) goes with its dep: the user's project has no such file
    option = re.compile(
        r"[ \t]*--[\w-]+[ \t]+(?:"
        + "|".join(re.escape(o) for o in sorted(demo_outputs))
        + r")(?=\s|$)"
    )
    for name in stages:
        cmd = _find(lines, ("stages", name, "cmd"))
        if cmd is None:
            continue
        n, indent = cmd
        for i in range(n, _block_end(lines, n, indent)):
            edited = option.sub("", lines[i])
            if edited != lines[i]:
                lines[i] = edited
                if not edited.strip():
                    drop.add(i)
    lines = [line for i, line in enumerate(lines) if i not in drop]
    new = "".join(lines)
    expected = {name: dict(stage) for name, stage in stages.items() if name != DEMO_STAGE}
    for stage in expected.values():
        if "deps" in stage:
            stage["deps"] = [d for d in stage["deps"] if str(d) not in demo_outputs]
        if isinstance(stage.get("cmd"), str):
            stage["cmd"] = option.sub("", stage["cmd"])
    got = (yaml.safe_load(new) or {}).get("stages", {})
    if got != expected:
        raise ChurnError(
            f"{label}: could not edit it safely line by line; remove the `{DEMO_STAGE}` stage "
            f"and the deps on its outputs ({', '.join(sorted(demo_outputs))}) by hand"
        )
    return new, generated


def unified_diff(old: str, new: str, name: str) -> str:
    """Return a unified diff of two versions of a file ('' when equal)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )
    )


# --------------------------------------------------------------------------- demo state
def size_of(path: Path) -> int:
    """Return the bytes under a file or folder (links not followed)."""
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def demo_state(root: Path, generated: list[str], keep: list[Path]) -> list[tuple[Path, int]]:
    """Return the demo's paths under `root` that exist, with their sizes, never one that is or
    holds a path in `keep` (the user's files): then only its other entries are listed."""
    keep = [p.resolve() for p in keep]
    out: list[tuple[Path, int]] = []

    def visit(path: Path) -> None:
        if not path.exists() and not path.is_symlink():
            return
        real = path.resolve()
        if any(_inside(real, k) for k in keep):
            return  # the user's own file (or inside it)
        if any(_inside(k, real) for k in keep):
            for child in sorted(path.iterdir()):
                visit(child)  # a demo folder holding the user's file: the rest only
            return
        out.append((path, size_of(path)))

    for name in (*DEMO_STATE, *(generated or GENERATED)):
        visit(root / name)
    return out


def human_size(n: int) -> str:
    """Return a byte count for people: 512 B, 1.2 MB."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
