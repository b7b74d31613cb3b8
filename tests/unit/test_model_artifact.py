"""The model folder round-trips: same predictions after save/load, corruption is detected."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churn.errors import ChurnError
from churn.model import Calibrator, ChurnModel, FeatureSpec


@pytest.fixture
def tiny_model():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 300, 400).astype(float),
            "channel": pd.array(rng.choice(["web", "app", "store"], 400), dtype="string"),
        }
    )
    target = (frame["recency_days"] + rng.normal(0, 40, 400) > 150).astype(int)
    spec = FeatureSpec.infer(frame, ["recency_days", "channel"])
    data = lgb.Dataset(spec.to_matrix(frame), target, free_raw_data=False)
    booster = lgb.train(
        {"objective": "binary", "verbose": -1, "seed": 1, "num_threads": 1, "min_data_in_leaf": 5},
        data,
        num_boost_round=20,
    )
    calibrator = Calibrator("isotonic", (0.0, 0.5, 1.0), (0.05, 0.4, 0.9))
    return ChurnModel(booster, calibrator, spec, {"model_version": "3"}), frame


def test_saved_model_predicts_the_same_after_loading(tmp_path, tiny_model):
    model, frame = tiny_model
    model.save(tmp_path)
    loaded = ChurnModel.load(tmp_path)
    np.testing.assert_array_equal(model.predict_proba(frame), loaded.predict_proba(frame))
    assert loaded.version == "3"


def test_unseen_category_and_column_order_do_not_break_scoring(tiny_model):
    model, frame = tiny_model
    shuffled = frame[["channel", "recency_days"]].copy()
    shuffled.loc[0, "channel"] = "telephone"
    proba = model.predict_proba(shuffled)
    assert np.isfinite(proba).all()
    np.testing.assert_array_equal(proba[1:], model.predict_proba(frame)[1:])


def test_missing_feature_column_is_a_clear_error(tiny_model):
    model, frame = tiny_model
    with pytest.raises(ChurnError, match="missing feature column"):
        model.predict_proba(frame.drop(columns=["channel"]))


def test_tampered_model_file_is_detected(tmp_path, tiny_model):
    model, _ = tiny_model
    model.save(tmp_path)
    path = tmp_path / "model.txt"
    path.write_text(path.read_text().replace("Tree=0", "Tree=0 "))
    with pytest.raises(ChurnError, match="sha256"):
        ChurnModel.load(tmp_path)


def test_missing_model_folder_names_the_fix(tmp_path):
    with pytest.raises(ChurnError, match="missing"):
        ChurnModel.load(tmp_path / "nothing")


def test_platt_and_isotonic_calibrators_are_monotone():
    raw = np.linspace(0, 1, 101)
    for calibrator in (
        Calibrator("platt", a=1.3, b=-0.2),
        Calibrator("isotonic", (0.1, 0.9), (0.2, 0.8)),
    ):
        out = calibrator.apply(raw)
        assert (np.diff(out) >= 0).all()
        assert Calibrator.from_dict(calibrator.to_dict()) == calibrator


def _resave_with_checksum(folder, name, text):
    """Write `text` as `name` and record its sha256 in metadata.json, as a careless edit would."""
    import hashlib
    import json

    (folder / name).write_text(text, encoding="utf-8")
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["files_sha256"][name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
    (folder / "metadata.json").write_text(json.dumps(metadata))


def test_garbage_in_model_txt_is_a_clear_error_never_a_native_abort(tmp_path, tiny_model):
    """Junk spliced into model.txt with a matching checksum made LightGBM's parser abort the
    process (`terminate called ...`, exit 134) or crash it; every case is now a ChurnError."""
    import subprocess
    import sys
    from pathlib import Path

    model, _ = tiny_model
    model.save(tmp_path / "clean")
    text = (tmp_path / "clean" / "model.txt").read_text()
    folders = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        start = int(rng.integers(0, len(text) - 120))
        junk = "".join(chr(c) for c in rng.integers(33, 127, 100))
        folder = tmp_path / f"m{seed}"
        model.save(folder)
        _resave_with_checksum(folder, "model.txt", text[:start] + junk + text[start + 100 :])
        folders.append(str(folder))
    script = (
        "import sys\nfrom churn.errors import ChurnError\nfrom churn.model import ChurnModel\n"
        "for folder in sys.argv[1:]:\n"
        "    try:\n        ChurnModel.load(folder)\n        print('loaded', folder)\n"
        "    except ChurnError as error:\n        print('refused', error)\n"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    done = subprocess.run(
        [sys.executable, "-c", script, *folders],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-500:]
    lines = done.stdout.splitlines()
    assert len(lines) == len(folders)
    assert all(line.startswith("refused") and "model.txt" in line for line in lines), lines


def test_random_bytes_in_model_txt_name_the_file_and_the_fix(tmp_path, tiny_model):
    model, _ = tiny_model
    model.save(tmp_path)
    (tmp_path / "model.txt").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(ChurnError, match=r"model\.txt.*(restore|retrain)"):
        ChurnModel.load(tmp_path)


def test_a_model_folder_without_the_booster_checksum_is_refused_before_lightgbm(
    tmp_path, tiny_model
):
    import json

    model, _ = tiny_model
    model.save(tmp_path)
    metadata = json.loads((tmp_path / "metadata.json").read_text())
    del metadata["files_sha256"]
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    (tmp_path / "model.txt").write_text("tree\nversion=v4\nTree=0\nnum_leaves=zz\nend of trees\n")
    with pytest.raises(ChurnError, match=r"metadata\.json: no files_sha256\.model\.txt"):
        ChurnModel.load(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("metadata.json", "[1, 2]", r"metadata\.json: expected a JSON object, found list"),
        ("metadata.json", "{not json", r"metadata\.json: not valid JSON"),
        ("metadata.json", '{"training_cutoffs": "2024-01-01"}', r"'training_cutoffs' must be list"),
        ("metadata.json", '{"training_cutoffs": ["2024-01-01"]}', r"\[oldest, newest\]"),
        ("metadata.json", '{"held_out": {"cutoff": "2024-01-01"}}', r"'held_out' must hold"),
        ("metadata.json", '{"horizon_days": "90"}', r"'horizon_days' must be int"),
        ("calibrator.json", '"isotonic"', r"calibrator\.json: expected a JSON object"),
        ("calibrator.json", '{"kind": "isotonic", "x": "0,1", "y": [0, 1]}', r"isotonic 'x'"),
        ("calibrator.json", '{"kind": "platt", "a": "1", "b": 0}', r"platt 'a' and 'b'"),
        ("calibrator.json", '{"kind": "spline"}', r"kind 'spline' is unknown"),
        ("features.json", '{"numeric": "recency_days"}', r"'numeric' must be a list"),
        ("features.json", '{"numeric": [], "categorical": ["channel"]}', r"no levels"),
        ("features.json", '{"categorical": []}', r"no 'numeric' list"),
        ("features.json", '{"numeric": ["recency_days"]}', r"takes 2 features but features"),
    ],
)
def test_wrong_json_shapes_in_the_model_folder_are_clear_errors(
    tmp_path, tiny_model, name, content, message
):
    model, _ = tiny_model
    model.save(tmp_path)
    if name == "metadata.json":
        (tmp_path / name).write_text(content)
    else:
        _resave_with_checksum(tmp_path, name, content)
    with pytest.raises(ChurnError, match=message):
        ChurnModel.load(tmp_path)


def test_a_changed_feature_set_names_missing_and_new_features_and_the_ways_out(tiny_model):
    """After a feature-set change the old champion could not score the new snapshot and every
    retrain failed at `score` with no hint of rollback or of promoting the new model."""
    model, frame = tiny_model
    definition = {"features": ["recency_days", "channel", "tenure_days"]}
    old = ChurnModel(
        model.booster, model.calibrator, model.spec, {**model.metadata, "definition": definition}
    )
    changed = frame.drop(columns=["channel"]).assign(
        customer_id="00001", spend_90d=1.0, tenure_days=3.0
    )
    with pytest.raises(ChurnError) as raised:
        old.predict_proba(changed)
    message = str(raised.value)
    assert "missing feature column(s) ['channel']" in message
    assert "model version 3" in message
    assert "feature(s) ['spend_90d'] it never saw" in message  # keys and known features aside
    assert "churn retrain --new-definition" in message and "churn rollback --to VERSION" in message
