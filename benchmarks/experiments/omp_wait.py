"""OpenMP waiting and LightGBM histogram layout: boosting and prediction time, same trees or not.

    python -m benchmarks.experiments.omp_wait --features /path/to/data/features --rounds 3 \
        --variant passive= --variant spin10k=GOMP_SPINCOUNT=10000 \
        --variant colwise=@force_col_wise --load 0 1 2 --out omp_wait.json

The training snapshots (a features folder's `train.parquet`, read only) are read as the train stage
reads them for the evaluation model (`churn.training_rows.read_snapshots` with the params file's sample
caps) by the first child, which keeps them beside --out (`.rows.parquet`) for the others; a child process per variant and repetition builds the evaluation model's fit Dataset
(`churn.train.lightgbm_dataset`, the params file's train settings), boosts --boost-rounds rounds
and predicts the test rows, timing each part, and prints the sha256 of the model text (without
its parameters block: only the trees) so the variants' trees can be compared.

A variant is NAME=[ENV=VALUE,...][@setting,...]: environment variables set in the child (on top
of the pin churn's entry applies: OMP_WAIT_POLICY=PASSIVE unless set) and LightGBM settings
switched on (e.g. @force_col_wise replaces force_row_wise). --load N runs N busy loops at
nice --load-nice (default 0) beside the children, which run at --child-nice (default 0), so the
children compete for the cores; --load 0 is the machine as it is. Variants alternate within each
repetition so load drifts hit all. Results: --out (JSON) and a .md twin.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import RESULTS, ROOT

CHILD = """
import hashlib, json, sys, time
start = time.perf_counter()
from churn.kernels import pin_kernels
pin_kernels()
import lightgbm as lgb
import numpy as np
from churn.columns import CHURNED, CUSTOMER_ID, CUTOFF, ROLE
from churn.config import load_params
from churn.model import FeatureSpec
from churn.train import feature_columns, lightgbm_dataset, lightgbm_settings, row_weights, cutoff_offsets, stack_column, BGNBD_PREFIX
from churn.training_rows import read_snapshots
args = json.loads(sys.argv[1])
params = load_params(args["params"])
train = params.train
from pathlib import Path
import pandas as pd
cache = Path(args["cache"])
if cache.is_file():
    frame = pd.read_parquet(cache)
else:
    frame, _ = read_snapshots(args["snapshots"], train.sample_customers, None,
                              train.sample_held_out_customers)
    frame.to_parquet(cache)
names = feature_columns(frame, "snapshots")
if stack_column(names, train, "snapshots") is not None:
    names = [n for n in names if not n.startswith(BGNBD_PREFIX)]
roles = frame[ROLE].astype("string")
fit = frame[(roles == "fit").to_numpy(bool, na_value=False)]
fit = fit.sort_values([CUTOFF, CUSTOMER_ID], kind="stable", ignore_index=True)
test = frame[(roles == "test").to_numpy(bool, na_value=False)].reset_index(drop=True)
spec = FeatureSpec.infer(fit, names)
settings = lightgbm_settings(train, spec)
for name in args["settings"]:
    if name == "force_col_wise":
        settings.pop("force_row_wise", None)
    settings[name] = True
y = fit[CHURNED].to_numpy("int64")
read = time.perf_counter() - start
t0 = time.perf_counter()
data = lightgbm_dataset(spec, fit, y, row_weights(fit, y, train), settings, "snapshots",
                        init_score=cutoff_offsets(fit, y, train))
t1, c1 = time.perf_counter(), time.process_time()
booster = lgb.train(settings, data, num_boost_round=args["boost_rounds"])
t2, c2 = time.perf_counter(), time.process_time()
matrix = spec.to_matrix(test)
t3 = time.perf_counter()
booster.predict(matrix)
t4 = time.perf_counter()
text = booster.model_to_string()
trees = text[: text.index("parameters:")] if "parameters:" in text else text
print(json.dumps({
    "read_s": round(read, 2), "dataset_s": round(t1 - t0, 2), "boost_s": round(t2 - t1, 2),
    "boost_cpu_s": round(c2 - c1, 2),
    "predict_s": round(t4 - t3, 2), "fit_rows": len(fit), "test_rows": len(test),
    "trees_sha256": hashlib.sha256(trees.encode()).hexdigest(),
}))
"""

BUSY = "while True:\n    pass\n"


def parse_variant(text: str) -> tuple[str, dict[str, str], list[str]]:
    name, _, rest = text.partition("=")
    env_part, _, settings_part = rest.partition("@")
    env = dict(item.split("=", 1) for item in env_part.split(",") if item)
    return name, env, [s for s in settings_part.split(",") if s]


def run_child(payload: dict, env: dict[str, str], nice: int) -> dict:
    child_env = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", CHILD, json.dumps(payload)],
        env=child_env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.nice(nice - os.nice(0)),
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"child failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - start, 2)
    return result


def markdown(results: dict) -> str:
    lines = [
        "# OpenMP waiting and histogram layout: LightGBM boosting and prediction",
        "",
        f"Written by `{results['command']}` ({results['started']} to {results['finished']}). "
        f"{results['boost_rounds']} boosting rounds on the evaluation model's fit rows, then "
        "prediction of the test rows; seconds, median over repetitions (each value in brackets). "
        "Trees: sha256 of the model text before its parameters block.",
        "",
    ]
    for load, by_variant in results["loads"].items():
        lines += [
            f"## {load} busy loop(s) at nice {results['load_nice']}, children at nice "
            f"{results['child_nice']}",
            "",
            "| variant | boost s | boost CPU s | predict s | dataset s | trees |",
            "|---|---|---|---|---|---|",
        ]
        for name, runs in by_variant.items():
            if not runs:
                continue
            cells = []
            for key in ("boost_s", "boost_cpu_s", "predict_s", "dataset_s"):
                values = [r[key] for r in runs]
                cells.append(f"{statistics.median(values):.2f} ({', '.join(map(str, values))})")
            shas = sorted({r["trees_sha256"][:12] for r in runs})
            lines.append(f"| {name} | {' | '.join(cells)} | {', '.join(shas)} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--rounds", type=int, default=3, help="repetitions per variant")
    parser.add_argument("--boost-rounds", type=int, default=100)
    parser.add_argument("--load", type=int, nargs="+", default=[0])
    parser.add_argument("--load-nice", type=int, default=0)
    parser.add_argument("--child-nice", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "omp_wait.json")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    payload_base = {
        "params": str(args.params),
        "snapshots": str(args.features / "train.parquet"),
        "boost_rounds": args.boost_rounds,
        # the first child reads the snapshots as the train stage does and keeps them here
        "cache": str(args.out.with_suffix(".rows.parquet")),
    }
    results: dict = {
        "command": "python -m benchmarks.experiments.omp_wait " + " ".join(sys.argv[1:]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "boost_rounds": args.boost_rounds,
        "load_nice": args.load_nice,
        "child_nice": args.child_nice,
        "variants": {name: {"env": env, "settings": s} for name, env, s in variants},
        "loads": {},
    }
    for load in args.load:
        busy = [
            subprocess.Popen(
                [sys.executable, "-c", BUSY],  # noqa: S603
                preexec_fn=lambda: os.nice(args.load_nice - os.nice(0)),
            )  # fmt: skip
            for _ in range(load)
        ]
        try:
            by_variant: dict[str, list] = {name: [] for name, _, _ in variants}
            results["loads"][str(load)] = by_variant
            for repetition in range(args.rounds):
                for name, env, settings in variants:
                    payload = {**payload_base, "settings": settings}
                    result = run_child(payload, env, args.child_nice)
                    result["load_avg"] = round(os.getloadavg()[0], 2)
                    by_variant[name].append(result)
                    print(f"load {load} rep {repetition + 1} {name}: {result}", flush=True)
                    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
                    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
                    args.out.with_suffix(".md").write_text(markdown(results), encoding="utf-8")
        finally:
            for process in busy:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
