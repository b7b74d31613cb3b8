"""`churn init`: point the project at your own export in one step — inspect it, propose the
params.yaml and dvc.yaml changes and the demo state to delete, and apply them only when asked."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from churn.config import EngineParams, parse_params
from churn.errors import ChurnError
from churn.init.detect import (
    DELIMITER_NAMES,
    DateGuess,
    Mapping,
    map_columns,
    map_side,
    settle_dayfirst,
)
from churn.init.project import (
    demo_state,
    edit_params,
    edit_pipeline,
    human_size,
    unified_diff,
)
from churn.init.sample import Sample, day_month_maxima, read_sample

__all__ = ["InitOptions", "InitPlan", "plan_init", "render_plan", "render_preview"]


@dataclass(frozen=True)
class InitOptions:
    """What the user gave: the sources and any guess they override."""

    source: str
    customers: str | None = None
    nps: str | None = None
    columns: dict[str, str | None] = field(default_factory=dict)  # role -> column
    no_transaction_id: bool = False
    delimiter: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    encoding: str | None = None
    date_format: str | None = None
    dayfirst: bool | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class InitPlan:
    """Everything `churn init` would change, and what it found."""

    root: Path
    sample: Sample
    mapping: Mapping
    source: str  # as written to params.yaml
    timezone: str
    params_old: str
    params_new: str
    pipeline_old: str
    pipeline_new: str
    delete: list[tuple[Path, int]]
    sides: dict[str, dict[str, Any] | None]
    ingest: Any  # churn.config.IngestParams of the new params.yaml, source made absolute


def _written_path(path: str, root: Path) -> str:
    """Return a source path as params.yaml should hold it: relative inside the project."""
    absolute = Path(path).resolve()
    try:
        return absolute.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def _date_settings(date: DateGuess | None) -> tuple[str | None, bool]:
    if date is None or date.fmt is None:
        return None, False
    return date.fmt, bool(date.dayfirst)


def _csv_changes(
    prefix: tuple[str, ...],
    sample: Sample,
    decimal: str,
    thousands: str | None,
    current_csv: dict[str, Any],
) -> dict[tuple[str, ...], Any]:
    if sample.fmt != "csv":
        return {}
    header = {}
    if not sample.table.has_header or "header" in current_csv:
        header = {(*prefix, "csv", "header"): sample.table.has_header}  # the key only if needed
    return {
        **header,
        (*prefix, "csv", "delimiter"): sample.table.delimiter,
        (*prefix, "csv", "encoding"): sample.encoding,
        (*prefix, "csv", "decimal"): decimal,
        (*prefix, "csv", "thousands"): thousands,
    }


def _side(path: str, kind: str, root: Path, dayfirst: bool | None) -> dict[str, Any]:
    sample = read_sample(path, option=f"--{kind}")
    columns, date = map_side(sample.table, kind, dayfirst)
    fmt, first = _date_settings(date)
    spec: dict[str, Any] = {"source": _written_path(path, root), "format": sample.fmt}
    if sample.fmt == "csv":
        spec["csv"] = {
            **({} if sample.table.has_header else {"header": False}),
            "delimiter": sample.table.delimiter,
            "encoding": sample.encoding,
            "decimal": ".",
            "thousands": None,
        }
    spec["columns"] = columns
    spec["date_format"] = fmt
    spec["dayfirst"] = first
    return spec


def plan_init(options: InitOptions, params_path: Path, pipeline_path: Path) -> InitPlan:
    """Inspect the sources and return the plan; reads files, changes nothing."""
    root = params_path.resolve().parent
    for path in (params_path, pipeline_path):
        if not path.is_file():
            raise ChurnError(f"{path}: not found; run `churn init` in the project folder")
    params_old = params_path.read_text(encoding="utf-8")
    pipeline_old = pipeline_path.read_text(encoding="utf-8")
    current = yaml.safe_load(params_old) or {}
    try:
        engine = EngineParams.model_validate(current.get("engine") or {})
    except ValueError:
        engine = EngineParams()

    sample = read_sample(options.source, options.encoding, options.delimiter)
    mapping = map_columns(
        sample.table,
        options.columns,
        options.no_transaction_id,
        options.date_format,
        options.dayfirst,
        options.decimal,
        options.thousands,
    )
    ingest_changes: dict[tuple[str, ...], Any] = {
        ("ingest", "source"): _written_path(options.source, root),
        ("ingest", "format"): sample.fmt,
        **_csv_changes(
            ("ingest",),
            sample,
            mapping.decimal,
            mapping.thousands,
            (current.get("ingest") or {}).get("csv") or {},
        ),
        **{("ingest", "columns", role): mapping.columns[role] for role in mapping.columns},
        ("ingest", "passthrough"): [],
    }
    date = mapping.date
    if date is not None and date.kind == "dmy" and date.dayfirst is None:
        # the head cannot tell 03/04 from 04/03: look at every row through the ingest reader
        probe = _ingest_params(current, ingest_changes, root, options.source)
        first_max, second_max = day_month_maxima(probe, engine, mapping.columns["timestamp"])
        date = settle_dayfirst(
            date, sample.table.label, mapping.columns["timestamp"], first_max, second_max
        )
        mapping = Mapping(
            mapping.columns, date, mapping.decimal, mapping.thousands,
            {**mapping.reasons, "date": "day/month order from every row of the file"},
            mapping.notes,
        )  # fmt: skip
    fmt, dayfirst = _date_settings(date)
    ingest_changes[("ingest", "timestamp_format")] = fmt
    ingest_changes[("ingest", "dayfirst")] = dayfirst
    if options.timezone is not None:
        ingest_changes[("ingest", "timezone")] = options.timezone
    # side tables come from the same system: ambiguous dates there follow the transactions'
    order = options.dayfirst if options.dayfirst is not None else (date and date.dayfirst)
    sides = {
        name: None if path is None else _side(path, name, root, order)
        for name, path in (("customers", options.customers), ("nps", options.nps))
    }
    for name, spec in sides.items():
        ingest_changes[("ingest", name)] = spec

    params_new = edit_params(params_old, ingest_changes, str(params_path))
    parse_params(yaml.safe_load(params_new), f"{params_path} (as `churn init` would write it)")
    pipeline_new, generated = edit_pipeline(pipeline_old, str(pipeline_path))
    keep = [Path(options.source), params_path, pipeline_path]
    keep += [Path(p) for p in (options.customers, options.nps) if p]
    data = yaml.safe_load(params_new)
    timezone = data["ingest"].get("timezone", "UTC")
    return InitPlan(
        root=root,
        sample=sample,
        mapping=mapping,
        source=ingest_changes[("ingest", "source")],
        timezone=timezone,
        params_old=params_old,
        params_new=params_new,
        pipeline_old=pipeline_old,
        pipeline_new=pipeline_new,
        # already set up for this export: what is there is its own pipeline state, kept
        delete=demo_state(root, generated, keep)
        if params_new != params_old or pipeline_new != pipeline_old
        else [],
        sides=sides,
        ingest=_ingest_params(data, {}, root, options.source),
    )


def _ingest_params(current: dict, changes: dict[tuple[str, ...], Any], root: Path, source: str):
    """Return typed ingest params of `current` with `changes`, the source as an absolute path."""
    import copy

    data = copy.deepcopy(current)
    for path, value in changes.items():
        target = data
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    data["ingest"]["source"] = str(Path(source).resolve())
    for name in ("customers", "nps"):
        spec = data["ingest"].get(name)
        if spec and not Path(spec["source"]).is_absolute():
            spec["source"] = str(root / spec["source"])
    return parse_params(data, "params.yaml").ingest


# --------------------------------------------------------------------------- words
def _shown_values(sample: Sample, column: str | None) -> str:
    if column is None:
        return ""
    values = sample.table.values(column)[:3]
    return "  e.g. " + ", ".join(repr(v) for v in values)


def render_plan(plan: InitPlan) -> str:
    """Return what `churn init` found and would change, for people."""
    table, mapping, sample = plan.sample.table, plan.mapping, plan.sample
    files = f"{len(sample.files)} files, " if len(sample.files) > 1 else ""
    out = [
        f"Inspected {sample.source} ({sample.fmt}, {files}{len(table.header)} columns, "
        f"first {len(table.rows):,} rows)",
    ]
    if sample.fmt == "csv":
        thousands = repr(mapping.thousands) if mapping.thousands else "none"
        out += [
            f"  delimiter       {DELIMITER_NAMES.get(table.delimiter, repr(table.delimiter))}",
            f"  encoding        {sample.encoding}",
            "  header          "
            + ("yes" if table.has_header else "none: the first line is data (csv.header: false)"),
            f"  decimal mark    {mapping.decimal!r}   thousands separator: {thousands}",
        ]
    for role, column in mapping.columns.items():
        why = mapping.reasons.get(role, "")
        shown = repr(column) if column else "-"
        out.append(f"  {role:<15} {shown:<18} ({why}){_shown_values(sample, column)}")
    date = mapping.date
    if date is None:
        out.append("  timestamps      typed timestamp column (no format needed)")
    else:
        extra = f"; {mapping.reasons['date']}" if "date" in mapping.reasons else ""
        out.append(f"  date format     {date.describe()} ({date.share:.0%} of the sample{extra})")
    offsets = date is not None and date.with_offset
    out.append(
        f"  time zone       {'timestamps with an offset are converted to' if offsets else 'naive timestamps are read as'} "
        f"{plan.timezone} (ingest.timezone; --timezone to change)"
    )
    for name, spec in plan.sides.items():
        shown = "none (set to null; give --" + name + " FILE to use one)"
        if spec is not None:
            shown = f"{spec['source']} columns {spec['columns']}"
        out.append(f"  {name + ' table':<15} {shown}")
    out += [f"  note: {note}" for note in mapping.notes]
    for name, old, new in (
        ("params.yaml", plan.params_old, plan.params_new),
        ("dvc.yaml", plan.pipeline_old, plan.pipeline_new),
    ):
        diff = unified_diff(old, new, name)
        out.append("")
        out.append(f"Changes to {name}:" if diff else f"{name}: no change")
        if diff:
            out.append(diff.rstrip("\n"))
    out.append("")
    if plan.delete:
        total = sum(size for _, size in plan.delete)
        out.append(f"Delete (what the demo left behind, {human_size(total)}):")
        for path, size in plan.delete:
            shown = path.relative_to(plan.root) if path.is_relative_to(plan.root) else path
            out.append(
                f"  {str(shown) + ('/' if path.is_dir() else ''):<40} {human_size(size):>10}"
            )
    else:
        out.append("Delete: nothing (no demo state, or already set up for this export)")
    if os.environ.get("MLFLOW_TRACKING_URI"):
        out.append(
            "  MLFLOW_TRACKING_URI is set: that registry is not cleared; give your model its "
            "own name (registry.model) if the demo model is registered there"
        )
    return "\n".join(out)


def render_preview(preview: dict, rows: int) -> str:
    """Return the dry read's result in words."""
    reasons = preview["quarantined_by_reason"]
    lines = [
        f"Dry read of the first {rows:,} rows through the ingest reader ({preview['file']}): "
        f"{preview['rows_read']:,} read, {preview['rows_clean']:,} clean, "
        f"{preview['quarantined']:,} quarantined, {preview['duplicates_removed']:,} duplicates "
        f"removed; timestamps {preview['timestamp_min']} to {preview['timestamp_max']}"
    ]
    for reason, count in reasons.items():
        detail = preview["first_detail"].get(reason, "")
        lines.append(f"  {reason}: {count:,} (first: {detail})")
    return "\n".join(lines)
