"""`churn init`'s wiring: check the options, show the plan and a dry read of the export, and with
`yes` delete the demo state and write params.yaml and dvc.yaml (both, or neither)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from churn.config import EngineParams, check_sections, load_params
from churn.errors import ChurnError
from churn.files import atomic_path
from churn.init import InitOptions, plan_init, render_plan, render_preview
from churn.init.sample import preview_ingest

DELIMITER_WORDS = {"tab": "\t", "\\t": "\t", "space": "whitespace"}


def init_options(
    source: str,
    customers: str | None,
    nps: str | None,
    columns: dict[str, str | None],
    *,
    no_transaction_id: bool,
    delimiter: str | None,
    decimal: str | None,
    thousands: str | None,
    encoding: str | None,
    date_format: str | None,
    dayfirst: bool | None,
    timezone: str | None,
) -> InitOptions:
    """Return the checked options of `churn init` (the error names the option and its values)."""
    if decimal is not None and decimal not in (".", ","):
        raise ChurnError(f"--decimal {decimal!r}: use . or ,")
    if columns.get("transaction_id") and no_transaction_id:
        raise ChurnError("--transaction-id and --no-transaction-id: give one of them")
    delimiter = DELIMITER_WORDS.get(delimiter, delimiter) if delimiter else None
    if delimiter is not None and len(delimiter) != 1 and delimiter != "whitespace":
        raise ChurnError(f"--delimiter {delimiter!r}: give one character, 'tab' or 'whitespace'")
    return InitOptions(
        source=source,
        customers=customers,
        nps=nps,
        columns=columns,
        no_transaction_id=no_transaction_id,
        delimiter=delimiter,
        decimal=decimal,
        thousands=thousands,
        encoding=encoding,
        date_format=date_format,
        dayfirst=dayfirst,
        timezone=timezone,
    )


def _engine(params: Path) -> EngineParams:
    try:
        return load_params(params).engine
    except ChurnError:
        return EngineParams()


def run(
    options: InitOptions,
    params: Path,
    sections: Iterable[str],
    preview_rows: int,
    yes: bool,
    echo: Callable[[str], None],
) -> None:
    """Show the plan for `options`; with `yes`, apply it and check the params just written
    (`sections`: the params sections dvc.yaml's stages read, as `churn check` checks them)."""
    pipeline = params.parent / "dvc.yaml"
    plan = plan_init(options, params, pipeline)
    echo(render_plan(plan))
    if not yes:
        echo("")
        echo(
            render_preview(preview_ingest(plan.ingest, _engine(params), preview_rows), preview_rows)
        )
        echo("\nNothing changed. Run the same command with --yes to apply it.")
        return
    # Demo state first: deleting is idempotent, so if anything fails the files still differ and
    # the next `churn init` shows the whole plan again. Both files are renamed into place only
    # after both are written.
    for path, _ in plan.delete:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    with contextlib.ExitStack() as stack:
        for path, old, new in ((params, plan.params_old, plan.params_new),
                               (pipeline, plan.pipeline_old, plan.pipeline_new)):  # fmt: skip
            if new != old:
                stack.enter_context(atomic_path(path)).write_text(new, encoding="utf-8")
    echo(f"\nApplied: wrote {params} and {pipeline}, deleted {len(plan.delete)} path(s).")
    # the same checks as `churn check`, then a dry read with the params just written
    settings = load_params(params)
    check_sections(params, set(sections))
    echo(f"{params}: valid (churn check)")
    ingest = settings.ingest
    if not Path(ingest.source).is_absolute():
        ingest = ingest.model_copy(update={"source": str(params.parent / ingest.source)})
    echo(render_preview(preview_ingest(ingest, settings.engine, preview_rows), preview_rows))
    echo("Next: `make run` (or `dvc repro` then `churn publish`).")
