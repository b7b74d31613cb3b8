"""Summed test durations per test file, from the JUnit XML files of two runs of the suite.

Shows where the suite spends its time and what a change moved. The XML comes from pytest itself:

    PYTEST_ADDOPTS=--junitxml=/tmp/before.xml make test   # (and after.xml on the changed tree)
    python benchmarks/suite_durations.py /tmp/before.xml /tmp/after.xml \
        --out benchmarks/results/suite_durations.json

A test's duration is its setup + call + teardown as pytest measured it on its worker; the sum over a
file is the time the file costs a worker (under pytest-xdist the workers' sums run in parallel).
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path


def per_file(junit: Path) -> dict[str, dict[str, float]]:
    """Return {test file: {"seconds": summed duration, "tests": count}} of one JUnit XML file."""
    files: dict[str, dict[str, float]] = defaultdict(lambda: {"seconds": 0.0, "tests": 0})
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        # classname is the dotted module path (tests.integration.test_x), plus a class if any
        parts = case.get("classname", "").split(".")
        modules = [i for i, part in enumerate(parts) if part.startswith("test_")]
        name = "/".join(parts[: modules[0] + 1]) + ".py" if modules else case.get("classname", "")
        files[name]["seconds"] += float(case.get("time", 0))
        files[name]["tests"] += 1
    return {
        name: {"seconds": round(v["seconds"], 1), "tests": v["tests"]} for name, v in files.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    before, after = per_file(args.before), per_file(args.after)
    names = sorted(set(before) | set(after), key=lambda n: -before.get(n, {}).get("seconds", 0))
    rows = {
        name: {
            "before_seconds": before.get(name, {}).get("seconds"),
            "after_seconds": after.get(name, {}).get("seconds"),
            "before_tests": before.get(name, {}).get("tests"),
            "after_tests": after.get(name, {}).get("tests"),
        }
        for name in names
    }
    total = {
        side: round(sum(v["seconds"] for v in data.values()), 1)
        for side, data in (("before", before), ("after", after))
    }
    report = {"note": args.note, "total_seconds": total, "files": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{'file':<62} {'before':>8} {'after':>8}")
    for name, row in list(rows.items())[:30]:
        print(f"{name:<62} {row['before_seconds'] or 0:8.1f} {row['after_seconds'] or 0:8.1f}")
    print(f"{'total':<62} {total['before']:8.1f} {total['after']:8.1f}")


if __name__ == "__main__":
    main()
