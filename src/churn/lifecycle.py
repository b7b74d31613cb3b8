"""The commands that run outside DVC (import-lists, publish, at-risk, app, backtest, retrain).

DVC deletes a stage's outputs before rerunning it, so what people act on (the published lists)
and what judges them later (the backtest) live outside DVC's outputs, in the published-lists
record (`churn.publish.record`). These functions find the stage files through dvc.yaml
(`churn.pipeline`), run the checks and write only through that record.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from churn.config import Params
from churn.errors import ChurnError
from churn.files import read_json
from churn.ledger.stage import check_contact_ids, read_contact_log, show_rows
from churn.logs import get_logger

log = get_logger("lifecycle")


def _read_report(path: Path) -> dict[str, Any] | None:
    return read_json(path, "rerun `dvc repro`")


def publish_scores(
    settings: Params,
    exports: Path,
    champion_version: str | None,
    *,
    force: bool = False,
    accept_drift: bool = False,
    allow_non_champion: bool = False,
    sql: bool | None = None,
    environ: Mapping[str, str] | None = None,
    root: Path = Path("."),
) -> dict[str, Any]:
    """Check every gate, then publish the scored list into the record; return its manifest."""
    from churn import pipeline
    from churn.model import ChurnModel
    from churn.publish import gates, record
    from churn.publish.power import check_power
    from churn.publish.sql import export_to_sql

    params = settings.publish
    scores_path = pipeline.stage_path("score", "out", root)
    if not scores_path.is_file():
        raise ChurnError(f"{scores_path}: not found; run `dvc repro` (the score stage) first")
    scores = pd.read_parquet(scores_path)
    gates.validate_scores(scores, str(scores_path))
    ingest_report = _read_report(pipeline.stage_path("ingest", "report", root))
    drift_report = _read_report(pipeline.stage_path("drift", "report", root))
    model = ChurnModel.load(pipeline.stage_path("score", "model", root))
    fallback = model.metadata.get("fallback") or None
    checks = [
        gates.check_scores_volume(scores, params),
        gates.check_scores_freshness(scores["as_of"].iloc[0], dt.date.today(), params),
        gates.check_ingest_report(ingest_report, params),
        gates.check_drift_gate(drift_report),
        gates.check_champion(
            scores,
            champion_version,
            allow_non_champion,
            model.version if fallback else None,
        ),
    ]
    for gate in checks:
        status = "pass" if gate.passed else "FAIL"
        if not gate.passed and gate.name == "drift" and accept_drift:
            status = "FAIL, accepted with --accept-drift"
        log.info("gate %s: %s (%s)", gate.name, status, gate.detail)
    gates.enforce_gates(checks, accept_drift)
    overrides = []
    if accept_drift and not next(g for g in checks if g.name == "drift").passed:
        overrides.append("accept_drift")
    if allow_non_champion and str(scores["model_version"].iloc[0]) != str(champion_version):
        overrides.append("non_champion")
    if fallback:
        log.warning(
            "the list is scored by the fallback %s (the best simple baseline): no model has "
            "passed the gate yet",
            model.version,
        )
    # the save rates the score stage used: measured per tier by the ledger, or assumed
    targeting = (_read_report(pipeline.stage_path("score", "report", root)) or {}).get(
        "targeting"
    ) or {}
    power = check_power(
        scores,
        targeting.get("save_rates") or settings.score.save_rate,
        settings.score.control_share,
        params.power_check.alpha,
        params.power_check.power,
        targeting.get("save_rate_sources"),
    )
    if power["warning"]:
        log.warning("power check: %s", power["warning"])
    else:
        log.info(
            "power check: the list can detect an effect of %.1f percentage points or more "
            "(expected effect %.1f, %s: %s; %d treated, %d control, base churn %.1f%%)",
            100 * power["minimum_detectable_effect"],
            100 * power["expected_effect"],
            power["effect_source"],
            power["effect_detail"],
            power["treated"],
            power["control"],
            100 * power["base_churn"],
        )
    if "measured_effect" in power:
        so_far = power["measured_effect"]
        (log.info if power["detects_measured_effect"] else log.warning)(
            "power check: past campaigns measured %+.1f retention points [%+.1f, %+.1f] on this "
            "tier mix; this list %s detect an effect that size",
            100 * so_far["retention_difference"],
            100 * so_far["ci_low"],
            100 * so_far["ci_high"],
            "can" if power["detects_measured_effect"] else "cannot",
        )
    about = {
        "registered_model": settings.registry.model,
        "champion_version": champion_version,
        # not None: scored by the gate's fallback (a simple baseline), not by a trained model
        "fallback": fallback,
        "definition": model.metadata.get("definition"),
        "overrides": overrides,
        "power_check": power,
        # which policy chose the list and why (the page's what-if counts money the same way)
        "targeting": {
            "policy": targeting.get("policy", "risk_x_value"),
            "reason": targeting.get("policy_reason"),
        },
    }
    result = record.publish_lists(scores, exports, force=force, about=about)
    manifest = result.manifest
    log.info(
        "%s %s: %d customers to contact, %d control (model %s)",
        result.status,
        exports / manifest["path"],
        manifest["rows"],
        manifest["groups"]["control"],
        manifest["model_version"],
    )
    if sql if sql is not None else params.sql.enabled:
        url = (environ or {}).get(params.sql.url_env)
        if not url:
            raise ChurnError(
                f"SQL export: environment variable {params.sql.url_env} is not set; set it to a "
                "SQLAlchemy URL (credentials stay in the environment) or use --no-sql"
            )
        listed = record.read_list(exports, manifest)
        rows = export_to_sql(listed, url, params.sql.table, params.sql.schema_name)
        log.info(
            "SQL export: %d rows for %s in table %s", rows, manifest["as_of"], params.sql.table
        )
    return manifest


def import_past_lists(source: Path, exports: Path | None = None) -> dict[str, Any]:
    """Import a CSV of campaign lists run before (or besides) churn into the published-lists
    record (`exports`, default: dvc.yaml's); return a summary (rows kept, lists, how many were
    new, quarantined rows by reason).

    The only way past lists enter the record: an explicit command, never a DVC stage, so no
    `dvc repro` or `dvc exp run` writes what the backtest, the ledger and the page read. The same
    file twice records nothing new."""
    from churn.publish import record

    if not source.is_file():
        raise ChurnError(f"{source}: past campaign lists not found; give the path of the CSV")
    if exports is None:
        from churn import pipeline

        exports = pipeline.exports_path()
    raw = pd.read_csv(source, dtype="string", keep_default_na=False, na_values=[""])
    checked = record.check_past_lists(raw, str(source))
    if checked.rows.empty and len(raw):
        first = checked.quarantine["reason"].iloc[0] if len(checked.quarantine) else "none"
        raise ChurnError(
            f"{source}: no usable row ({len(raw)} row(s), {len(checked.quarantine)} "
            f"quarantined, first reason {first}); fix the file and import it again"
        )
    result = record.import_lists(checked, exports, str(source))
    reasons = checked.quarantine["reason"].value_counts().sort_index()
    summary = {
        "file": str(source),
        "rows": len(raw),
        "rows_kept": len(checked.rows),
        "lists": len(result.manifests),
        "newly_imported": result.imported,
        "quarantined": {str(k): int(v) for k, v in reasons.items()},
        "quarantine_examples": checked.quarantine.head(20).to_dict(orient="records"),
    }
    if len(checked.quarantine):
        log.warning(
            "%s: %d row(s) left out (%s); first at data row %d: %s",
            source,
            len(checked.quarantine),
            ", ".join(f"{k}: {v}" for k, v in summary["quarantined"].items()),
            int(checked.quarantine["source_row"].iloc[0]),
            checked.quarantine["detail"].iloc[0],
        )
    log.info(
        "past campaign lists: %d list(s) from %s, %d new in %s (%d already there)",
        len(result.manifests),
        source,
        result.imported,
        exports,
        result.unchanged,
    )
    return summary


def _read_transactions(root: Path) -> pd.DataFrame:
    """Return the clean transactions (customer, date, amount) the ingest stage wrote."""
    from churn import pipeline
    from churn.columns import AMOUNT, CUSTOMER_ID, DATE

    path = pipeline.stage_path("ingest", "out", root) / "transactions.parquet"
    if not path.is_file():
        raise ChurnError(f"{path}: not found; run `dvc repro` first")
    return pd.read_parquet(path, columns=[CUSTOMER_ID, DATE, AMOUNT])


def _ledger_contacts(root: Path) -> Path | None:
    """Return the contact log the ledger stage reads (its --contacts in dvc.yaml), or None."""
    from churn import pipeline

    value = pipeline.stage_options("ledger", root).get("contacts")
    return None if value is None else Path(root) / Path(value)


def run_backtest_report(
    settings: Params, exports: Path, contacts: Path | None, report: Path, root: Path = Path(".")
) -> list[dict[str, str]]:
    """Backtest every published list against the clean transactions; write the report."""
    from churn.backtest import run_backtest, summary_rows
    from churn.files import write_json
    from churn.publish import record

    published = {}
    for as_of in record.published_dates(exports):
        manifest = record.read_manifest(exports, as_of)
        definition = manifest.get("definition") or {}
        horizon = int(definition.get("horizon_days") or settings.churn.horizon_days)
        published[dt.date.fromisoformat(as_of)] = (horizon, record.read_scored(exports, manifest))
    contact_path = contacts if contacts is not None else _ledger_contacts(root)
    contact_log = read_contact_log(contact_path)
    transactions = _read_transactions(root)
    matched = check_contact_ids(contact_log, transactions, contact_path)
    # a list is known to have been used by a campaign when a contact log is given or the record
    # holds a download of it (any version of that date: a replaced list's customers overlap)
    used = {dt.date.fromisoformat(str(event["as_of"])) for event in record.read_downloads(exports)}
    result = run_backtest(published, transactions, settings.backtest, contact_log, used)
    write_json(result if matched is None else {**result, "contact_log": matched}, report)
    rows = summary_rows(result)
    for run in result["runs"]:
        flagged, rest = run["flagged_vs_rest"]["flagged"], run["flagged_vs_rest"]["rest"]
        if flagged["churn_rate"] is not None:
            log.info(
                "list of %s: flagged customers churned %.1f%% [%.1f%%, %.1f%%], predicted %.1f%%; "
                "the rest churned %.1f%%, predicted %.1f%% (%s)",
                run["as_of"],
                100 * flagged["churn_rate"],
                100 * flagged["ci_low"],
                100 * flagged["ci_high"],
                100 * flagged["predicted"],
                100 * (rest["churn_rate"] or 0.0),
                100 * (rest["predicted"] or 0.0),
                run["flagged_vs_rest"]["judged_on"],
            )
            if run["flagged_vs_rest"]["flagged_below_rest"]:
                log.info(
                    "list of %s: its flagged customers churned less than the rest (the rule weighs "
                    "value: see score.target.min_probability_floor)",
                    run["as_of"],
                )
        if not run["campaign"]["known"]:
            log.info("list of %s: %s", run["as_of"], run["campaign"]["note"])
        for warning in run["warnings"]:
            log.warning("%s", warning)
    if not rows:
        log.info(
            "backtest: no published list has reached its horizon yet (%d pending)",
            len(result["pending"]),
        )
    for pending in result["pending"]:
        log.info("pending: list of %s matures on %s", pending["as_of"], pending["matures_on"])
    return rows


def app_paths(
    root: Path = Path("."),
) -> tuple[Path | None, Path | None, Path | None, Path | None]:
    """Return (suppression list, retention page, campaign ledger report, backtest report) for
    `churn app`, from dvc.yaml's score, report and ledger stages; None for one that dvc.yaml does
    not name (the page then does without it)."""
    from churn import pipeline

    def named(stage: str, option: str) -> Path | None:
        try:
            return pipeline.stage_path(stage, option, root)
        except ChurnError:
            return None

    report = named("report", "out")
    return (
        named("score", "suppression"),
        report and report / "retention.html",
        named("ledger", "report"),
        named("report", "backtest"),
    )


def retrain_steps(
    settings: Params,
    exports: Path | None,
    child_env: Mapping[str, str],
    accept_drift: bool,
    force: bool = False,
) -> Any:
    """Return the steps of one `churn retrain` run (the registry is opened after the lock).
    Without `exports`, the record and the backtest report are where dvc.yaml names them."""
    import functools

    from churn import pipeline, tracking
    from churn.retrain import RetrainSteps, resolve_command, run_repro

    names = settings.registry

    @functools.cache
    def registry() -> tracking.ModelRegistry:
        return tracking.project_registry(names)

    def champion() -> str | None:
        return registry().alias_version(names.champion_alias)

    def publish() -> None:
        publish_scores(
            settings,
            exports or pipeline.exports_path(),
            champion(),
            force=force,
            accept_drift=accept_drift,
            environ=child_env,
        )

    def backtest_step() -> None:
        backtest(settings, exports, None, None)

    return RetrainSteps(
        champion_version=champion,
        repro=lambda started: run_repro(
            resolve_command(settings.retrain.repro_command, sys.executable, child_env),
            env=child_env,
            started=started,
        ),
        publish=publish,
        backtest=backtest_step if settings.retrain.backtest else None,
    )


# --------------------------------------------------------------------------- the commands
def publish(
    settings: Params,
    exports: Path | None,
    *,
    force: bool,
    accept_drift: bool,
    allow_non_champion: bool,
    sql: bool | None,
) -> dict[str, Any]:
    """`churn publish`: the gates against the registry's champion, then the dated list into the
    record (`exports`, default: where dvc.yaml names it); return its manifest."""
    import os

    from churn import pipeline, tracking

    names = settings.registry
    champion = tracking.project_registry(names).alias_version(names.champion_alias)
    return publish_scores(
        settings,
        exports or pipeline.exports_path(),
        champion,
        force=force,
        accept_drift=accept_drift,
        allow_non_champion=allow_non_champion,
        sql=sql,
        environ=os.environ,
    )


def at_risk(
    exports: Path | None,
    date: str | None,
    tiers: list[str] | None,
    top: int | None,
    min_value: float | None,
    where: list[str] | None,
    group: str,
    out: Path | None,
    file_format: str | None,
    echo: Callable[..., Any],
) -> int:
    """`churn at-risk`: filter a published list (default: LATEST) and write it to `out` (or
    stdout) as CSV, JSON or Excel; `echo(text, err=...)` shows the summary. Return the exit code:
    0, or 141 (the shell's SIGPIPE status) when the reader of stdout stopped early."""
    import contextlib
    import os

    from churn import files, pipeline
    from churn.publish import lists
    from churn.publish.formats import render_list
    from churn.publish.record import read_list, read_manifest

    if group not in ("treatment", "control"):
        raise ChurnError(f"--group {group!r}: use treatment or control")
    to_stdout = out is None or str(out) == "-"
    file_format = file_format or (
        "csv" if to_stdout else {".json": "json", ".xlsx": "xlsx"}.get(out.suffix.lower(), "csv")
    )
    exports = exports or pipeline.exports_path()
    manifest = read_manifest(exports, date)
    selected = lists.filter_list(
        read_list(exports, manifest, group),
        tiers=tiers,
        top=top,
        min_value=min_value,
        where=lists.parse_where(where or []),
    )
    data = render_list(selected, file_format)
    if to_stdout:
        if file_format == "xlsx":
            raise ChurnError("--format xlsx: give --out FILE.xlsx (no Excel on stdout)")
        try:
            files.write_stdout(data)
        except BrokenPipeError:
            # the reader stopped early (`| head`): stop quietly, with the shell's SIGPIPE status
            with contextlib.suppress(OSError, ValueError):  # no more "broken pipe" at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
    else:
        files.write_bytes(out, data)
    summary = f"{group} list as of {manifest['as_of']} (model {manifest['model_version']}):\n"
    echo(summary + lists.summarise_list(selected), err=to_stdout)
    return 0


def serve_app(
    params: Path,
    host: str,
    port: int,
    exports: Path | None,
    behind_proxy: bool,
    tls_certfile: Path | None,
    tls_keyfile: Path | None,
) -> None:
    """`churn app`: serve the marketing page over the published lists until stopped (`params`:
    params.yaml, read once the `app` extra is found)."""
    import os

    from churn import pipeline
    from churn.app.security import SECRET_ENV, check_bind, is_loopback
    from churn.config import load_params

    try:
        from churn.app.server import AppConfig, serve
    except ImportError as error:
        raise ChurnError(
            f"churn app needs the `app` extra ({error.name} is missing): pip install 'churn[app]'"
        ) from None
    from churn.score.targeting import choose_save_rates

    settings = load_params(params)
    secret = os.environ.get(SECRET_ENV) or None
    tls = tls_certfile is not None and tls_keyfile is not None
    check_bind(host, secret=secret, tls=tls, behind_proxy=behind_proxy)
    suppression, report_page, ledger_report, backtest_report = app_paths()
    # the same save rates the score stage used (measured per tier where campaigns measured them)
    save_rates = choose_save_rates(read_json(ledger_report, "rerun `churn ledger`"), settings.score)
    config = AppConfig(
        exports=exports or pipeline.exports_path(),
        suppression=suppression,
        backtest=backtest_report,
        ledger=ledger_report,
        report_page=report_page,
        contact_cost=settings.score.contact_cost,
        save_rates=save_rates.rates,
        save_rate_measured=any(
            source["source"] == "measured" for source in save_rates.sources.values()
        ),
        horizon_days=settings.churn.horizon_days,
        expected_value_days=settings.score.expected_value_days,
        currency=settings.app.currency,
        secret=secret,
        # behind a proxy the Host header is the public name; a login guards the page instead
        loopback_only=is_loopback(host) and not behind_proxy,
        behind_proxy=behind_proxy,
    )
    scheme = "https" if tls else "http"
    log.info("churn app: open %s://%s:%d/ (Ctrl+C stops it)", scheme, host, port)
    serve(config, host, port, tls_certfile, tls_keyfile)


def backtest(
    settings: Params, exports: Path | None, contacts: Path | None, report: Path | None
) -> None:
    """`churn backtest`: the published lists against what happened (the record, the contact log
    and the report default to where dvc.yaml names them); show the rows."""
    from churn import pipeline

    rows = run_backtest_report(
        settings,
        exports or pipeline.exports_path(),
        contacts,
        report or pipeline.backtest_report_path(),
    )
    show_rows(rows, "Backtest of published at-risk lists")


def retrain(
    params: Path,
    log_file: Path | None,
    *,
    accept_drift: bool,
    force: bool,
    new_definition: bool,
    new_registry: bool,
    promote_env: Mapping[str, str],
) -> int:
    """`churn retrain`: lock, `dvc repro` with the gate applied, publish, backtest; return the
    scheduler's exit code. `promote_env` names the variables of the promote stage's --apply,
    --new-definition and --new-registry (keys: apply, new_definition, new_registry)."""
    import os

    from churn.config import load_params
    from churn.logs import add_log_file
    from churn.retrain import EXIT_ERROR, child_environ, run_retrain

    if log_file is not None:
        add_log_file(log_file)
    try:
        settings = load_params(params)
    except ChurnError as error:
        log.error("%s", error)  # into the log file too, where whoever reads the schedule looks
        return EXIT_ERROR
    # a scheduler's bare PATH lacks the venv: the stages' `churn` must come from this one
    child_env = {**child_environ(sys.executable, os.environ), promote_env["apply"]: "1"}
    if new_definition:
        log.warning("--new-definition: a challenger under a changed definition may become champion")
        child_env[promote_env["new_definition"]] = "1"
    if new_registry:
        log.warning("--new-registry: models/champion/ is registered again in this registry")
        child_env[promote_env["new_registry"]] = "1"
    steps = retrain_steps(settings, None, child_env, accept_drift, force)
    return run_retrain(steps, settings.retrain.lock_file)
