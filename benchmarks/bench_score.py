"""Benchmark of the score stage: 1M customers scored, and the reasons rate for the flagged list.

Run from the repository root: python -m benchmarks.bench_score [--customers 1000000]
Writes benchmarks/results/score.json. The model is a realistic LightGBM booster (500 trees,
31 leaves) trained on synthetic data of the snapshot schema, cached in benchmarks/data/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

from benchmarks.common import DATA, RESULTS
from churn.config import ScoreParams
from churn.generate import SNAPSHOT_AS_OF, SNAPSHOT_FEATURES, synthetic_snapshot
from churn.model import Calibrator, ChurnModel, FeatureSpec
from churn.score import build_scores, score_customers
from churn.score.reasons import compute_contributions, explain_contributions

AS_OF = SNAPSHOT_AS_OF
FEATURES = SNAPSHOT_FEATURES
make_snapshot = synthetic_snapshot


def realistic_model(folder: Path, trees: int, leaves: int, rows: int) -> ChurnModel:
    """Return the cached benchmark model, training it once (~1 min) when missing."""
    if (folder / "model.txt").exists():
        return ChurnModel.load(folder)
    train = make_snapshot(rows, seed=99, labelled=True)
    spec = FeatureSpec.infer(train, FEATURES)
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": leaves,
            "learning_rate": 0.03,
            "min_data_in_leaf": 20,
            "feature_fraction": 0.9,
            "verbose": -1,
            "seed": 1,
            "deterministic": True,
        },
        lgb.Dataset(spec.to_matrix(train), train["churned"]),
        num_boost_round=trees,
    )
    model = ChurnModel(booster, Calibrator("identity"), spec, {"model_version": "bench"})
    model.save(folder)
    return model


def timed(function, *args, **kwargs):
    """Return (result, seconds)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    """Run the benchmark and write benchmarks/results/score.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--reason-sample", type=int, default=5_000)
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--leaves", type=int, default=31)
    args = parser.parse_args()

    model, train_seconds = timed(
        realistic_model,
        DATA / f"score_model_{args.trees}x{args.leaves}",
        args.trees,
        args.leaves,
        100_000,
    )
    dump = model.booster.dump_model()
    depth = max(_depth(tree["tree_structure"]) for tree in dump["tree_info"])
    snapshot, make_seconds = timed(make_snapshot, args.customers, seed=7)
    params = ScoreParams()

    # reference: the bare booster on a prepared matrix (the floor any scoring must pay)
    matrix, matrix_seconds = timed(model.spec.to_matrix, snapshot)
    _, raw_seconds = timed(model.booster.predict, matrix)
    # scoring as the stage does it: predict (incl. matrix) + tiers + value + targeting + groups
    probability, predict_seconds = timed(model.predict_proba, snapshot)
    scores, targeting_seconds = timed(
        score_customers, snapshot, probability, params, model_version=model.version
    )
    scoring_seconds = predict_seconds + targeting_seconds
    flagged = int(scores["at_risk"].sum())

    # reasons: exact TreeSHAP vs path attribution on a sample of the flagged customers
    flagged_ids = scores.loc[scores["at_risk"], "customer_id"].head(args.reason_sample)
    rows = (
        snapshot.set_index(snapshot["customer_id"])
        .loc[flagged_ids.to_numpy()]
        .reset_index(drop=True)
    )
    shap, shap_seconds = timed(compute_contributions, model, rows, "treeshap")
    path, path_seconds = timed(compute_contributions, model, rows, "path")
    (texts, main), text_seconds = timed(
        explain_contributions, shap, model.spec.names, rows, params.reasons
    )
    path_texts, path_main = explain_contributions(path, model.spec.names, rows, params.reasons)
    top1 = float(np.mean([a == b for a, b in zip(main, path_main, strict=True)]))
    sets = float(
        np.mean([_families(a) == _families(b) for a, b in zip(texts, path_texts, strict=True)])
    )
    shap_rate = len(rows) / shap_seconds
    path_rate = len(rows) / path_seconds
    text_rate = len(rows) / text_seconds

    # the whole stage function on a smaller slice, reasons included, as a consistency check
    stage_rows = min(args.customers, 100_000)
    _, stage_seconds = timed(build_scores, snapshot.head(stage_rows), model, params)

    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # the machine is shared: a load above the core count slows every figure below
            "load_average_1min_at_end": round(os.getloadavg()[0], 1),
        },
        "model": {"trees": model.booster.num_trees(), "leaves": args.leaves, "max_depth": depth},
        "customers": args.customers,
        "scoring": {
            "seconds": round(scoring_seconds, 2),
            "limit_seconds": 60,
            "passed": scoring_seconds <= 60,
            "predict_seconds": round(predict_seconds, 2),
            "targeting_seconds": round(targeting_seconds, 2),
            "customers_per_second": round(args.customers / scoring_seconds),
            "reference_raw_booster_predict_seconds": round(raw_seconds, 2),
            "reference_matrix_seconds": round(matrix_seconds, 2),
            "ratio_to_raw_predict": round(scoring_seconds / raw_seconds, 2),
        },
        "flagged": flagged,
        "reasons": {
            "sample_rows": len(rows),
            "treeshap_rows_per_second": round(shap_rate, 1),
            "treeshap_ms_per_row": round(1000 / shap_rate, 3),
            "path_rows_per_second": round(path_rate, 1),
            "path_ms_per_row": round(1000 / path_rate, 4),
            "path_speedup": round(path_rate / shap_rate, 1),
            "text_rows_per_second": round(text_rate, 1),
            "path_agrees_on_main_family": round(top1, 3),
            "path_agrees_on_reason_families": round(sets, 3),
            "estimated_seconds_for_flagged_list_treeshap": round(
                flagged / shap_rate + flagged / text_rate, 1
            ),
            "estimated_seconds_for_flagged_list_path": round(
                flagged / path_rate + flagged / text_rate, 1
            ),
        },
        "build_scores_100k_with_reasons_seconds": round(stage_seconds, 2),
        "setup_seconds": {"model": round(train_seconds, 1), "snapshot": round(make_seconds, 1)},
    }
    out = RESULTS / "score.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def _families(text: str) -> set[str]:
    # one template per family and row, so equal reason texts mean equal reason families
    return set(text.split(" | "))


def _depth(node: dict) -> int:
    if "leaf_value" in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


if __name__ == "__main__":
    main()
