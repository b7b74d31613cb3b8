"""Benchmark of the marketing page (`churn app`) on a one-million-row published list.

Run from the repository root: python -m benchmarks.app_selection [--rows 1000000] [--changes 20]
Writes benchmarks/results/app_selection.json (and prints a summary for app_selection.md).

The list is scored by the real `score_customers` (random probabilities on a synthetic snapshot)
and published by the real record writer into benchmarks/data/app_selection/ (made once). The page
runs under uvicorn on a free port; each filter change is one HTTP GET of the page, timed end to end:
the count, the totals, the what-if and the first page are all in that response. The reference,
measured in the same run, is what a page without the cache would do per click: read the list
from Parquet and filter it with pandas.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from benchmarks.common import DATA, RESULTS
from churn.config import ScoreParams, TargetParams
from churn.generate import synthetic_snapshot
from churn.publish import record
from churn.score import score_customers
from churn.score.targeting import save_rates_by_tier

FAMILIES = np.array(["recency", "frequency", "nps", "spend_trend", "refunds"], dtype=object)
ACTIONS = np.array(
    ["win-back offer", "service call", "personal recommendation", "loyalty invitation"],
    dtype=object,
)
# 20 filter changes, as a marketing person would make them one after another
CHANGES: list[list[tuple[str, str]]] = [
    [("tier", "high")],
    [("tier", "high"), ("seg_region", "north")],
    [("tier", "high"), ("seg_region", "north"), ("seg_channel", "web")],
    [("tier", "high"), ("seg_region", "north"), ("seg_channel", "web"), ("page", "3")],
    [("tier", "medium"), ("seg_channel", "app"), ("seg_channel", "store")],
    [("reason", "nps")],
    [("reason", "nps"), ("action", "service call")],
    [("action", "win-back offer"), ("value_min", "500")],
    [("value_min", "200"), ("value_max", "800")],
    [("chance_min", "60"), ("chance_max", "90")],
    [("chance_min", "60"), ("how", "size"), ("size", "20000")],
    [("chance_min", "60"), ("how", "budget"), ("budget", "50000"), ("cost", "4")],
    [("customer", "00042")],
    [("customer", "999")],
    [("tier", "high"), ("tier", "medium"), ("seg_region", "south"), ("page", "200")],
    [("seg_region", "east"), ("reason", "recency"), ("reason", "frequency")],
    [("seg_channel", "store"), ("how", "size"), ("size", "5000"), ("cost", "2.5")],
    [("tier", "low")],
    [("value_min", "1000"), ("chance_min", "40"), ("seg_region", "west")],
    [],
]


def make_published_list(folder: Path, rows: int) -> dict:
    """Return the manifest of a published list with about `rows` customers to contact (made once)."""
    if (folder / record.LATEST_FILE).exists():
        manifest = record.read_manifest(folder)
        if manifest["rows"] >= rows * 0.99:
            return manifest
    scored = int(rows / 0.9 * 1.1)  # ~10% control, and some customers not flagged
    snapshot = synthetic_snapshot(scored, seed=11)
    probability = np.random.default_rng(11).beta(2, 3, scored)
    params = ScoreParams(
        target=TargetParams(rule="top_n", top_n=int(rows / 0.9), min_probability_floor=None)
    )
    params = params.model_copy(
        update={"target": params.target.model_copy(update={"above_average": False})}
    )
    scores = score_customers(snapshot, probability, params, model_version="bench")
    flagged = scores["at_risk"].to_numpy(dtype=bool)
    rng = np.random.default_rng(12)
    family = np.where(flagged, FAMILIES[rng.integers(0, len(FAMILIES), scored)], None)
    action = np.where(flagged, ACTIONS[rng.integers(0, len(ACTIONS), scored)], None)
    days = rng.integers(30, 400, scored)
    every = rng.integers(5, 60, scored)
    reasons = np.where(
        flagged,
        pd.Series(days).astype(str).radd("no purchase for ").add(" days; usually buys every ")
        + pd.Series(every).astype(str)
        + " days",
        None,
    )
    scores = scores.assign(
        reasons=pd.array(reasons, dtype="string"),
        reason_family=pd.array(family, dtype="string"),
        suggested_action=pd.array(action, dtype="string"),
    )
    return record.publish_lists(scores, folder, force=True).manifest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, query: list[tuple[str, str]]) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", "/?" + urlencode(query), headers={"Host": f"127.0.0.1:{port}"})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return time.perf_counter() - started, response.status, body


def _reference(folder: Path, manifest: dict, query: list[tuple[str, str]]) -> float:
    """Time what a page without the cache would do per click: read the list, filter with pandas."""
    started = time.perf_counter()
    frame = record.read_list(folder, manifest)
    grouped: dict[str, list[str]] = {}
    for name, value in query:
        grouped.setdefault(name, []).append(value)
    mask = pd.Series(True, index=frame.index)
    if "tier" in grouped:
        mask &= frame["risk_tier"].isin(grouped["tier"])
    for column in ("region", "channel"):
        if f"seg_{column}" in grouped:
            mask &= frame[column].isin(grouped[f"seg_{column}"])
    selected = frame.loc[mask.to_numpy(dtype=bool)]
    _ = (len(selected), selected["value_at_risk"].sum(), selected.head(50))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=len(CHANGES))
    parser.add_argument("--out", type=Path, default=RESULTS / "app_selection.json")
    args = parser.parse_args()

    import uvicorn

    from churn.app.server import AppConfig, create_app

    folder = DATA / "app_selection" / f"rows_{args.rows}"
    started = time.perf_counter()
    manifest = make_published_list(folder, args.rows)
    prepare_seconds = time.perf_counter() - started
    params = ScoreParams()
    config = AppConfig(
        exports=folder,
        suppression=None,
        backtest=None,
        report_page=None,
        contact_cost=params.contact_cost,
        save_rates=save_rates_by_tier(params),
        save_rate_measured=False,
        horizon_days=90,
        expected_value_days=params.expected_value_days,
    )
    app = create_app(config)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        first_seconds, status, _ = _get(port, [])  # loads the list once (checks its sha256)
        assert status == 200, status
        timings, counts = [], []
        for query in (CHANGES * 2)[: args.changes]:
            seconds, status, body = _get(port, query)
            assert status == 200, (status, query, body[:300])
            assert b'id="errors"' not in body, (query, body[:2000])
            count = body.split(b'id="count">', 1)[1].split(b"<", 1)[0].decode()
            timings.append(seconds)
            counts.append({"query": query, "selected": count, "seconds": round(seconds, 4)})
        loads = app.state.store.loads
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    reference = [_reference(folder, manifest, query) for query in CHANGES[:3]]
    result = {
        "benchmark": "app_selection",
        "command": f"python -m benchmarks.app_selection --rows {args.rows} --changes {args.changes}",
        "rows": manifest["rows"],
        "control_rows": manifest["groups"]["control"],
        "filter_changes": len(timings),
        "p50_seconds": round(float(np.percentile(timings, 50)), 4),
        "p95_seconds": round(float(np.percentile(timings, 95)), 4),
        "max_seconds": round(float(max(timings)), 4),
        "goal_p95_seconds": 1.0,
        "goal_met": bool(np.percentile(timings, 95) <= 1.0),
        "first_request_seconds": round(first_seconds, 3),
        "list_loads": loads,
        "reference_reload_and_filter_seconds": [round(s, 3) for s in reference],
        "prepare_list_seconds": round(prepare_seconds, 1),
        "changes": counts,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{result['rows']:,} rows: p50 {result['p50_seconds']:.3f} s, p95 "
        f"{result['p95_seconds']:.3f} s, max {result['max_seconds']:.3f} s over "
        f"{len(timings)} filter changes; first request (loads the list) {first_seconds:.2f} s; "
        f"list loaded {loads}x; reference (reload + pandas filter per click) "
        f"{', '.join(f'{s:.2f}' for s in reference)} s"
    )


if __name__ == "__main__":
    main()
