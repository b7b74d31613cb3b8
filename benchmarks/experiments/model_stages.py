"""A/B of the model stages (train .. report) on a finished scale run's features, code trees side by side.

    python -m benchmarks.experiments.model_stages --base /work/speed10m-data/base \
        --variant ref=/path/to/main/src --variant new=src:train.num_threads=2 --rounds 1

The base folder is a scale run (benchmarks/scale.py) cut back to what the stages after `features`
start from (data/, reports/, exports/, params.yaml; no mlflow.db, mlartifacts, models, scores or
uplift table). Each round runs every variant in turn (alternating, so load drifts hit both) in a
fresh copy of the base: dvc.yaml's commands of the stages after `ledger`'s outputs and `features`
(train, evaluate, promote, uplift; --stages to choose), each in its own memory cgroup
(scale.run_capped: wall, CPU, peak RSS, load) with PYTHONPATH set to the variant's source tree, so
the same interpreter runs either code. A variant is NAME=SRC[:KEY=VALUE,...]: params overrides
applied to the copy's params.yaml (a KEY starting ENV_ sets that environment variable instead). Results: --out (JSON) and its .md twin; metrics.json of each
copy is kept beside it to compare the models.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from benchmarks.common import RESULTS
from benchmarks.scale import run_capped, stage_commands

DEFAULT_STAGES = ("train", "evaluate", "promote", "uplift")


def parse_variant(text: str) -> tuple[str, Path, list[str]]:
    name, _, rest = text.partition("=")
    src, _, overrides = rest.partition(":")
    return name, Path(src).resolve(), [o for o in overrides.split(",") if o]


def prepare(base: Path, work: Path, overrides: list[str]) -> None:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(base, work)
    settings = yaml.safe_load((work / "params.yaml").read_text(encoding="utf-8"))
    for item in overrides:
        key, _, value = item.partition("=")
        if key.startswith("ENV_"):
            continue
        *parents, leaf = key.split(".")
        node = settings
        for part in parents:
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    (work / "params.yaml").write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--variant", action="append", required=True, help="NAME=SRC[:K=V,...]")
    parser.add_argument("--stages", nargs="+", default=list(DEFAULT_STAGES))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--scratch", type=Path, default=None, help="default: beside --base")
    parser.add_argument("--cap-gb", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "model_stages_10M.json")
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant]
    scratch = args.scratch or args.base.parent
    commands = dict(stage_commands())
    results: dict[str, object] = {
        "command": "python -m benchmarks.experiments.model_stages " + " ".join(sys.argv[1:]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "variants": {name: {"src": str(src), "overrides": o} for name, src, o in variants},
        "runs": {name: [] for name, _, _ in variants},
    }
    for round_index in range(args.rounds):
        for name, src, overrides in variants:
            work = scratch / f"ab-{name}"
            prepare(args.base, work, overrides)
            env = {**os.environ, "PYTHONPATH": str(src)}
            env.update(
                o.removeprefix("ENV_").split("=", 1) for o in overrides if o.startswith("ENV_")
            )
            run: dict[str, object] = {"round": round_index + 1, "stages": {}}
            for stage in args.stages:
                log = work / f"{stage}.log"
                timing = run_capped(commands[stage], work, int(args.cap_gb * 2**30),
                                    f"{name}-{stage}", log, env)  # fmt: skip
                run["stages"][stage] = timing
                print(f"{name} round {round_index + 1} {stage}: {timing}", flush=True)
                if timing["exit_code"] != 0:
                    break
            metrics = work / "reports" / "metrics.json"
            if metrics.is_file():
                run["metrics"] = json.loads(metrics.read_text(encoding="utf-8"))["model"]
            results["runs"][name].append(run)
            results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
            args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    summary = {}
    for name, runs in results["runs"].items():
        summary[name] = {
            stage: {
                "median_seconds": statistics.median(r["stages"][stage]["seconds"] for r in runs),
                "median_cpu_seconds": statistics.median(
                    r["stages"][stage]["cpu_seconds"] for r in runs
                ),
            }
            for stage in args.stages
            if all(stage in r["stages"] for r in runs)
        }
    results["summary"] = summary
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
