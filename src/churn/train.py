"""The `train` stage: LightGBM on fit cutoffs, early stopping and calibration on held-out customers."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import optimize
from sklearn.isotonic import isotonic_regression

from churn.columns import CHURNED, CUSTOMER_ID, CUTOFF, ROLE
from churn.config import LightGBMParams, TrainParams
from churn.cutoffs import (
    CALIBRATION,
    FIT,
    GAP,
    IN_TIME,
    LABELLED_ROLES,
    OUT_OF_TIME,
    TEST,
    check_role_windows,
    customer_share,
    evaluation_kind,
    labelled_by,
)
from churn.errors import ChurnError
from churn.logs import get_logger
from churn.metrics import ECE_BINS, log_loss, pr_auc, probability_metrics, roc_auc
from churn.model import Calibrator, ChurnModel, FeatureSpec
from churn.training_rows import (
    exclude_campaign_contacts,
    read_training_snapshots,
    sampled_ids,
    thin_held_out,
)

if TYPE_CHECKING:
    pass

log = get_logger("train")

ROLES = LABELLED_ROLES
KEY_COLUMNS = (CUSTOMER_ID, CUTOFF, ROLE, CHURNED)
_PROB_EPS = 1e-4  # calibrated probabilities stay inside [eps, 1 - eps]: nobody is certain


@dataclass(frozen=True)
class TrainResult:
    """The fitted models plus what the held-out rows said about them, for the run record.

    `model` never read a test row: it is what `churn evaluate` measures. `production` is the model
    to promote and score: with `train.production_refit` the same settings refit on every cutoff
    whose label window ends by the test cutoff, calibrated on the test cutoff (which that booster
    never saw); otherwise `model` itself.
    """

    model: ChurnModel
    rounds: int
    calibration_scores: dict[str, float]  # cross-validated log loss per calibrator kind
    diagnostics: dict[str, float] = field(default_factory=dict)
    production: ChurnModel | None = None

    @property
    def production_model(self) -> ChurnModel:
        """Return the model to promote and score (the evaluation model when there is no refit)."""
        return self.production if self.production is not None else self.model


def feature_columns(snapshots: pd.DataFrame, source: str = "snapshots") -> list[str]:
    """Return the model features: every column except customer_id, cutoff, role and churned."""
    names = [name for name in snapshots.columns if name not in KEY_COLUMNS]
    if not names:
        raise ChurnError(
            f"{source}: no feature columns besides {list(KEY_COLUMNS)}; rebuild features"
        )
    for name in names:
        dtype = snapshots[name].dtype
        if pd.api.types.is_datetime64_any_dtype(dtype) or str(dtype).startswith("date"):
            raise ChurnError(
                f"{source}: column {name!r} holds dates ({dtype}); features must be numeric or "
                "categorical strings — turn it into days before the cutoff in the features stage"
            )
        first = snapshots[name].dropna().head(1).tolist()
        if first and isinstance(first[0], datetime.date | pd.Timestamp):
            raise ChurnError(
                f"{source}: column {name!r} holds dates; features must be numeric or categorical "
                "strings — turn it into days before the cutoff in the features stage"
            )
    return names


def check_snapshots(
    snapshots: pd.DataFrame, horizon_days: int | None = None, source: str = "snapshots"
) -> None:
    """Raise ChurnError unless the snapshots have keys, valid roles and labels, and disjoint windows."""
    missing = [name for name in KEY_COLUMNS if name not in snapshots.columns]
    if missing:
        raise ChurnError(
            f"{source}: missing column(s) {missing}; expected {list(KEY_COLUMNS)} plus features "
            "— rebuild with `dvc repro features`"
        )
    roles = snapshots[ROLE].astype("string")
    unknown = sorted(set(roles.dropna().unique()) - set(ROLES))
    if unknown or roles.isna().any():
        raise ChurnError(
            f"{source}: column 'role' has value(s) {unknown or ['<missing>']}; "
            f"allowed: {list(ROLES)}"
        )
    labels = snapshots[CHURNED]
    bad = labels.isna() | ~labels.isin([0, 1])
    if bad.any():
        raise ChurnError(
            f"{source}: column 'churned' has {int(bad.sum())} value(s) other than 0/1 "
            f"(first: {labels[bad].iloc[0]!r}); rebuild features"
        )
    duplicated = snapshots.duplicated([CUSTOMER_ID, CUTOFF])
    if duplicated.any():
        first = snapshots.loc[duplicated, [CUSTOMER_ID, CUTOFF]].iloc[0]
        raise ChurnError(
            f"{source}: {int(duplicated.sum())} duplicate (customer_id, cutoff) row(s) (first: "
            f"{first[CUSTOMER_ID]!r} at {first[CUTOFF]}); snapshots must have one row per pair"
        )
    for role in (FIT, CALIBRATION):
        part = labels[roles == role]
        if part.empty or part.nunique() < 2:
            raise ChurnError(
                f"{source}: role {role!r} has {len(part)} row(s) and "
                f"{part.nunique()} label value(s); training needs both churners and non-churners "
                "in fit and calibration cutoffs — add history or more cutoffs (features.cutoffs)"
            )
    if horizon_days is not None:
        check_role_windows(snapshots, horizon_days, source)


def lightgbm_settings(params: TrainParams, spec: FeatureSpec) -> dict[str, Any]:
    """Return the LightGBM parameter dict: hyperparameters plus the reproducibility switches."""
    unknown = [name for name in params.monotone if name not in spec.names]
    if unknown:
        raise ChurnError(
            f"params.yaml: train.monotone names {unknown}, which are not feature columns; "
            f"features are {spec.names}"
        )
    categorical = [name for name in params.monotone if name in spec.categorical]
    if categorical:
        raise ChurnError(
            f"params.yaml: train.monotone names categorical feature(s) {categorical}; "
            "monotone constraints apply to numeric features only"
        )
    tree = params.lightgbm.model_dump(exclude={"max_rounds", "early_stopping_rounds"})
    return {
        "objective": "binary",
        "metric": "binary_logloss",
        "verbose": -1,
        "seed": params.seed,
        "num_threads": params.num_threads,
        "deterministic": True,
        # column-wise histograms: the same trees as row-wise (checked at 10M and on the default
        # data), less CPU with two threads and faster when other jobs share the cores
        # (benchmarks/results/scale_10M_session9.md)
        "force_col_wise": True,
        "feature_pre_filter": False,
        "monotone_constraints": [params.monotone.get(name, 0) for name in spec.names],
        **tree,
    }


def class_weights(labels: np.ndarray, balance: bool) -> np.ndarray | None:
    """Return weights giving both classes equal total weight, or None when not balancing."""
    if not balance:
        return None
    positives = labels.mean()
    return np.where(labels == 1, 0.5 / positives, 0.5 / (1 - positives))


def row_weights(rows: pd.DataFrame, labels: np.ndarray, params: TrainParams) -> np.ndarray | None:
    """Return the booster's row weights: class balance (train.balance_classes) times the cutoff
    decay 0.5 ** (days before the newest cutoff of `rows` / train.cutoff_half_life_days), or
    None when both are off."""
    weights = class_weights(labels, params.balance_classes)
    if params.cutoff_half_life_days is None or rows.empty:
        return weights
    cutoffs = pd.to_datetime(rows[CUTOFF])
    age = (cutoffs.max() - cutoffs).dt.days.to_numpy("float64")
    decay = np.power(0.5, age / params.cutoff_half_life_days)
    return decay if weights is None else weights * decay


def cutoff_offsets(
    rows: pd.DataFrame, labels: np.ndarray, params: TrainParams
) -> np.ndarray | None:
    """Return each row's starting score (train.cutoff_offset): the log-odds of the churn rate
    of its cutoff among `rows`, clipped away from 0 and 1; None when the option is off."""
    if not params.cutoff_offset or rows.empty:
        return None
    keys = pd.to_datetime(rows[CUTOFF]).to_numpy()
    rate = pd.Series(labels, dtype="float64").groupby(keys).transform("mean").to_numpy()
    rate = np.clip(rate, 1e-3, 1 - 1e-3)
    return np.log(rate / (1 - rate))


def fit_platt(raw: np.ndarray, labels: np.ndarray) -> Calibrator:
    """Return the Platt calibrator p = sigmoid(a * logit(raw) + b) with the lowest log loss."""
    clipped = np.clip(raw, 1e-6, 1 - 1e-6)
    logit = np.log(clipped / (1 - clipped))
    y = labels.astype("float64")

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * logit + ab[1]
        # log(1 + e^z) - y z, written to stay finite for large |z|
        value = np.mean(np.logaddexp(0.0, z) - y * z)
        p = 1.0 / (1.0 + np.exp(-z))
        return float(value), np.array([np.mean((p - y) * logit), np.mean(p - y)])

    result = optimize.minimize(loss, np.array([1.0, 0.0]), jac=True, method="BFGS")
    a, b = (float(v) for v in result.x)
    return Calibrator("platt", a=a, b=b)


def fit_isotonic(raw: np.ndarray, labels: np.ndarray) -> Calibrator:
    """Return a strictly increasing (centred) isotonic calibrator over raw scores in [0, 1]."""
    order = np.argsort(raw, kind="stable")
    x_sorted, y_sorted = raw[order], labels[order].astype("float64")
    # one point per distinct raw score, weighted by its count
    unique_x, start, counts = np.unique(x_sorted, return_index=True, return_counts=True)
    sums = np.add.reduceat(y_sorted, start)
    fitted = isotonic_regression(sums / counts, sample_weight=counts, increasing=True)
    # centred isotonic regression (Oron & Flournoy 2017): one knot per pooled block at its weighted
    # mean score, linear in between — strictly increasing, so it keeps the booster's ranking
    block = np.concatenate([[0], np.cumsum(np.diff(fitted) > 0)])
    weight = np.bincount(block, weights=counts)
    centres = np.bincount(block, weights=unique_x * counts) / weight
    values = np.bincount(block, weights=fitted * counts) / weight
    values = np.clip(values, _PROB_EPS, 1 - _PROB_EPS)
    xs = [0.0, *centres.tolist(), 1.0]
    # tiny end slopes keep the map strictly increasing beyond the outermost knots
    ys = [
        max(values[0] / 2, _PROB_EPS / 2),
        *values.tolist(),
        min((1 + values[-1]) / 2, 1 - _PROB_EPS / 2),
    ]
    if centres[0] <= 0.0:
        xs, ys = xs[1:], ys[1:]
    if centres[-1] >= 1.0:
        xs, ys = xs[:-1], ys[:-1]
    return Calibrator("isotonic", tuple(xs), tuple(ys))


def fit_stack(raw: np.ndarray, stacked: np.ndarray, labels: np.ndarray, column: str) -> Calibrator:
    """Return the stacked calibrator p = sigmoid(a * logit(raw) + c * logit(stacked) + b) with
    the lowest log loss: the booster's score and a second probability (BG/NBD's) in one logistic
    regression. Missing values of `stacked` count as the mean of its finite logits here.

    a and c are kept >= 0: both inputs are churn scores, so a negative weight is collinearity
    fitted on few rows (it turned a 0.79 booster into 0.74 on a 3-month history), never signal.
    """
    raw_logit = np.log(np.clip(raw, 1e-6, 1 - 1e-6) / (1 - np.clip(raw, 1e-6, 1 - 1e-6)))
    clipped = np.clip(np.asarray(stacked, dtype="float64"), 1e-6, 1 - 1e-6)
    second = np.log(clipped / (1 - clipped))
    finite = np.isfinite(second)
    fill = float(second[finite].mean()) if finite.any() else 0.0
    second = np.where(finite, second, fill)
    y = labels.astype("float64")

    def loss(acb: np.ndarray) -> tuple[float, np.ndarray]:
        z = acb[0] * raw_logit + acb[1] * second + acb[2]
        value = np.mean(np.logaddexp(0.0, z) - y * z)
        p = 1.0 / (1.0 + np.exp(-z))
        return float(value), np.array(
            [np.mean((p - y) * raw_logit), np.mean((p - y) * second), np.mean(p - y)]
        )

    result = optimize.minimize(
        loss,
        np.array([1.0, 0.0, 0.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None), (0.0, None), (None, None)],
    )
    a, c, b = (float(v) for v in result.x)
    return Calibrator("stack", a=a, b=b, column=column, c=c, fill=fill)


def stack_cv_logloss(
    raw: np.ndarray, stacked: np.ndarray, labels: np.ndarray, customer_ids: pd.Series, column: str
) -> float | None:
    """Return the stack's 2-fold (by customer) log loss, in the same folds as choose_calibrator."""
    fold = customer_share(customer_ids, "calibration_cv") < 0.5
    losses = []
    for held in (fold, ~fold):
        if held.all() or not held.any() or len(np.unique(labels[~held])) < 2:
            continue
        calibrator = fit_stack(raw[~held], stacked[~held], labels[~held], column)
        losses.append(
            log_loss(labels[held], calibrator.apply(raw[held], stacked[held])) * held.sum()
        )
    return float(sum(losses) / len(labels)) if losses else None


def _fit_calibrator(kind: str, raw: np.ndarray, labels: np.ndarray) -> Calibrator:
    return fit_isotonic(raw, labels) if kind == "isotonic" else fit_platt(raw, labels)


def choose_calibrator(
    raw: np.ndarray, labels: np.ndarray, customer_ids: pd.Series, method: str
) -> tuple[Calibrator, dict[str, float]]:
    """Return the calibrator fitted on all rows, its kind chosen by 2-fold (by customer) log loss."""
    fold = customer_share(customer_ids, "calibration_cv") < 0.5
    scores: dict[str, float] = {}
    for kind in ("isotonic", "platt"):
        losses = []
        for held in (fold, ~fold):
            if held.all() or not held.any() or len(np.unique(labels[~held])) < 2:
                continue
            calibrator = _fit_calibrator(kind, raw[~held], labels[~held])
            losses.append(log_loss(labels[held], calibrator.apply(raw[held])) * held.sum())
        if losses:
            scores[kind] = float(sum(losses) / len(labels))
    if method == "auto":
        # ties go to Platt: two parameters are the safer choice
        kind = min(scores, key=lambda k: (scores[k], k != "platt")) if scores else "platt"
    else:
        kind = method
    return _fit_calibrator(kind, raw, labels), scores


def progress(label: str, rows: int, rounds: int, every_seconds: float = 20.0) -> Any:
    """Return a LightGBM callback that logs boosting progress on long runs: one line when it
    starts, then one at most every `every_seconds` (round, share done, elapsed, the early-stopping
    log loss when there is one) — plain log lines, no progress bar, so scheduled logs stay clean."""
    state = {"start": time.perf_counter(), "last": time.perf_counter()}
    log.info("%s: boosting up to %d rounds on %d rows", label, rounds, rows)

    def callback(env: Any) -> None:
        now = time.perf_counter()
        if now - state["last"] < every_seconds:
            return
        state["last"] = now
        done = env.iteration + 1
        scores = [
            f"{name} {metric} {value:.4f}"
            for name, metric, value, _ in env.evaluation_result_list or []
        ]
        log.info(
            "%s: round %d of at most %d (%.0f%%), %.0f s%s",
            label,
            done,
            env.end_iteration,
            100 * done / max(env.end_iteration, 1),
            now - state["start"],
            f"; {', '.join(scores)}" if scores else "",
        )

    callback.order = 30  # after LightGBM's own callbacks (early stopping is 30 too; harmless)
    return callback


BGNBD_PREFIX = "bgnbd_"  # the BG/NBD columns of features.bgnbd (churn.features.bgnbd_columns)
STACK_COLUMN = "bgnbd_p_no_purchase"  # BG/NBD P(no purchase in the horizon): the label's event


def stack_column(names: list[str], params: TrainParams, source: str) -> str | None:
    """Return the column the calibrator stacks with the booster (train.stack_bgnbd), or None."""
    if not params.stack_bgnbd:
        return None
    if STACK_COLUMN not in names:
        log.warning(
            "%s: train.stack_bgnbd is on but the snapshots have no %r (features.bgnbd is off): "
            "the booster is calibrated alone",
            source,
            STACK_COLUMN,
        )
        return None
    return STACK_COLUMN


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Return rows in a fixed order (cutoff, customer id) so input row order cannot matter."""
    return frame.sort_values([CUTOFF, CUSTOMER_ID], kind="stable", ignore_index=True)


def _select_canonical(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> pd.DataFrame:
    """Return _canonical(frame[mask]) with one copy of the chosen rows: the order is found on
    the two key columns first, then the rows are taken once."""
    keys = frame.loc[np.asarray(mask, dtype=bool), [CUTOFF, CUSTOMER_ID]]
    keys.index = np.flatnonzero(np.asarray(mask, dtype=bool))
    positions = keys.sort_values([CUTOFF, CUSTOMER_ID], kind="stable").index.to_numpy()
    rows = frame.take(positions)
    rows.index = pd.RangeIndex(len(rows))
    return rows


class _Stacked:
    """The named columns of several frames, each concatenated only when asked for (FeatureSpec
    reads one column at a time): the spec of the frames together without copying them whole."""

    def __init__(self, parts: list[pd.DataFrame]) -> None:
        self.parts = parts

    def __getitem__(self, name: str) -> pd.Series:
        return pd.concat([part[name] for part in self.parts], ignore_index=True)


def lightgbm_dataset(
    spec: FeatureSpec,
    rows: pd.DataFrame,
    labels: np.ndarray,
    weights: np.ndarray | None,
    settings: dict[str, Any],
    source: str,
    reference: lgb.Dataset | None = None,
    init_score: np.ndarray | None = None,
) -> lgb.Dataset:
    """Return the constructed LightGBM Dataset of `rows`, as from spec.to_matrix(rows), with
    one float64 matrix in memory (row-major, freed once LightGBM has binned it) instead of the
    model matrix frame plus LightGBM's copies of it. Categorical features are their levels'
    codes and the booster records the levels (pandas_categorical) as with a frame, so the
    trained model, its text and its predictions are the same."""
    frame_columns = spec.to_matrix(rows.head(0), source).columns  # checks the columns exist
    matrix = np.empty((len(rows), len(spec.names)), dtype="float64")
    for index, name in enumerate(frame_columns):
        if name in spec.categories:
            one = FeatureSpec((), (name,), {name: spec.categories[name]})
            codes = one.to_matrix(rows[[name]], source)[name].cat.codes.to_numpy()
            matrix[:, index] = np.where(codes < 0, np.nan, codes)
        else:
            matrix[:, index] = pd.to_numeric(rows[name], errors="raise").to_numpy("float64")
    dataset = lgb.Dataset(
        matrix,
        labels,
        weight=weights,
        init_score=init_score,
        feature_name=[str(name) for name in frame_columns],
        categorical_feature=[str(name) for name in spec.categorical],
        params=settings,
        reference=reference,
        free_raw_data=True,
    )
    del matrix
    dataset.construct()
    dataset.pandas_categorical = [list(spec.categories[name]) for name in spec.categorical]
    return dataset


def fit_model(
    snapshots: pd.DataFrame,
    params: TrainParams,
    horizon_days: int | None = None,
    source: str = "snapshots",
    metadata: dict[str, Any] | None = None,
    customers_fit: int | None = None,
) -> TrainResult:
    """Return a calibrated model trained without ever reading the test (or gap) rows.

    With `params.production_refit`, also the production refit (see TrainResult), which records the
    evaluation model's test-cutoff scores for the promote gate. `customers_fit`: the number of
    customers with fit rows when the snapshots were read thinned by read_snapshots.
    """
    # calibration and test rows of at most train.sample_held_out_customers customers
    snapshots = thin_held_out(snapshots, params.sample_held_out_customers)
    check_snapshots(snapshots, horizon_days, source)
    names = feature_columns(snapshots, source)
    stack = stack_column(names, params, source)
    if stack is not None:
        # the booster leaves BG/NBD to the calibrator (as features they hurt on short
        # histories: benchmarks/results/model_quality_round2.md)
        names = [name for name in names if not name.startswith(BGNBD_PREFIX)]
    roles = snapshots[ROLE].astype("string")
    # the test cutoff is for measuring only: it is dropped here, before anything is fitted
    fit_mask = (roles == FIT).to_numpy(dtype=bool, na_value=False)
    if customers_fit is None:
        customers_fit = int(snapshots.loc[fit_mask, CUSTOMER_ID].nunique())
    if params.sample_customers is not None:
        # sample_customers on the fit rows, chosen on the ids before any row is copied
        chosen = sampled_ids(snapshots.loc[fit_mask, CUSTOMER_ID], params.sample_customers)
        if chosen is not None:
            fit_mask &= snapshots[CUSTOMER_ID].astype("string").isin(chosen).to_numpy(bool)
    fit_rows = _select_canonical(snapshots, fit_mask)
    if params.sample_customers is not None:
        log.info(
            "%s: fitting on %d of %d customers (train.sample_customers, stable id hash): %d rows",
            source,
            int(fit_rows[CUSTOMER_ID].nunique()),
            customers_fit,
            len(fit_rows),
        )
    held = _select_canonical(snapshots, (roles == CALIBRATION).to_numpy(bool, na_value=False))
    spec = FeatureSpec.infer(_Stacked([fit_rows, held]), names)  # type: ignore[arg-type]
    settings = lightgbm_settings(params, spec)

    stop_mask = customer_share(held[CUSTOMER_ID], "early_stopping") < params.early_stopping_share
    stopping, calibrating = held[stop_mask], held[~stop_mask]
    for name, part in (("early-stopping", stopping), ("calibration", calibrating)):
        if part[CHURNED].nunique() < 2:
            raise ChurnError(
                f"{source}: the {name} half of the calibration cutoff has {len(part)} row(s) "
                "and only one label value; add customers or cutoffs"
            )
    y_fit = fit_rows[CHURNED].to_numpy("int64")
    y_stop = stopping[CHURNED].to_numpy("int64")
    weights = row_weights(fit_rows, y_fit, params)
    train_set = lightgbm_dataset(
        spec, fit_rows, y_fit, weights, settings, source,
        init_score=cutoff_offsets(fit_rows, y_fit, params),
    )  # fmt: skip
    stop_weights = class_weights(y_stop, params.balance_classes)
    stop_set = lightgbm_dataset(
        spec, stopping, y_stop, stop_weights, settings, source, train_set,
        init_score=cutoff_offsets(stopping, y_stop, params),
    )  # fmt: skip
    # what the record needs of the fit rows, so they can go before the refit
    rows_fit, customers_sampled = len(fit_rows), int(fit_rows[CUSTOMER_ID].nunique())
    training_cutoffs = _cutoff_range(
        pd.concat(
            [fit_rows[[CUTOFF]], stopping[[CUTOFF]]] if params.refit else [fit_rows[[CUTOFF]]]
        )
    )
    history: dict[str, Any] = {}
    booster = lgb.train(
        settings,
        train_set,
        num_boost_round=params.lightgbm.max_rounds,
        valid_sets=[stop_set],
        valid_names=["early_stopping"],
        callbacks=[
            lgb.early_stopping(params.lightgbm.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(history),
            progress("evaluation model", len(fit_rows), params.lightgbm.max_rounds),
        ],
    )
    rounds = max(int(booster.best_iteration), 1)
    # free the evaluation fit's matrices (raw data kept for the stopping set) before the refits
    del train_set, stop_set
    if params.refit:
        # same settings and rounds, more and newer rows; calibration rows stay unseen
        del fit_rows
        # the fit rows plus the early-stopping rows, taken from the snapshots in one copy
        cal_mask = (roles == CALIBRATION).to_numpy(bool, na_value=False)
        share = customer_share(snapshots.loc[cal_mask, CUSTOMER_ID], "early_stopping")
        refit_mask = fit_mask.copy()
        refit_mask[np.flatnonzero(cal_mask)[share < params.early_stopping_share]] = True
        refit_rows = _select_canonical(snapshots, refit_mask)
        y_refit = refit_rows[CHURNED].to_numpy("int64")
        n_refit = len(refit_rows)
        refit_set = lightgbm_dataset(
            spec, refit_rows, y_refit, row_weights(refit_rows, y_refit, params),
            settings, source, init_score=cutoff_offsets(refit_rows, y_refit, params),
        )  # fmt: skip
        del refit_rows
        booster = lgb.train(
            settings,
            refit_set,
            num_boost_round=rounds,
            callbacks=[progress("refit", n_refit, rounds)],
        )
        del refit_set
    else:
        del fit_rows
    # rebuild from text so the in-memory booster is exactly what gets saved
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
    raw = ChurnModel(booster, Calibrator(), spec).predict_raw(calibrating)
    y_cal = calibrating[CHURNED].to_numpy("int64")
    calibrator, scores = choose_calibrator(
        raw, y_cal, calibrating[CUSTOMER_ID].reset_index(drop=True), params.calibration
    )
    stacked = None
    if stack is not None:
        stacked = calibrating[stack].astype("float64").to_numpy()
        ids = calibrating[CUSTOMER_ID].reset_index(drop=True)
        # recorded beside isotonic's and Platt's, not a criterion: on the 6-month shape the
        # stack's log loss lost to Platt's while its ranking gained 0.008 ROC AUC at the as-of
        # date (benchmarks/results/stacking.md)
        stack_loss = stack_cv_logloss(raw, stacked, y_cal, ids, stack)
        if stack_loss is not None:
            scores["stack"] = stack_loss
        calibrator = fit_stack(raw, stacked, y_cal, stack)
    if stacked is not None:
        log.info(
            "%s: stacked calibrator: %.3f x logit(booster) + %.3f x logit(%s) + %.3f",
            source,
            calibrator.a,
            calibrator.c,
            stack,
            calibrator.b,
        )
    calibrated = calibrator.apply(raw, stacked)
    diagnostics = {
        "rounds": float(rounds),
        "early_stopping_logloss": float(history["early_stopping"]["binary_logloss"][rounds - 1]),
        "calibration_raw_logloss": log_loss(y_cal, raw),
        "calibration_logloss": log_loss(y_cal, calibrated),
        "rows_fit": float(rows_fit),
        "customers_fit": float(customers_sampled),
        "customers_fit_available": float(customers_fit),
        "rows_early_stopping": float(len(stopping)),
        "rows_calibration": float(len(calibrating)),
    }
    for kind, value in scores.items():
        diagnostics[f"calibration_cv_logloss_{kind}"] = value
    info = {
        **(metadata or {}),
        "rounds": rounds,
        "calibration": calibrator.kind,
        "calibration_cv_logloss": scores,
        "refit": params.refit,
        "sample_customers": params.sample_customers,
        "features": len(spec.names),
        "horizon_days": horizon_days,
        "training_cutoffs": training_cutoffs,
        "calibration_cutoff": _cutoff_range(calibrating)[1],
        "role": "evaluation",
    }
    kind = evaluation_kind(snapshots[CUTOFF], roles, horizon_days) if horizon_days else OUT_OF_TIME
    info["evaluation"] = kind
    if kind == IN_TIME:
        info["holdout"] = _holdout_bound(snapshots, roles, source)
    model = ChurnModel(booster, calibrator, spec, info)
    # the production refit builds its own rows: drop this fit's copies first (memory)
    del held, stopping, calibrating
    production = None
    if kind == IN_TIME:
        # the held-out customers are held out from every model, the production one included
        log.info(
            "%s: in-time holdout (history too short for an out-of-time test): no production "
            "refit; the evaluation model, which never saw the held-out customers, is the challenger",
            source,
        )
    elif params.production_refit and horizon_days is None:
        log.warning(
            "%s: no horizon_days given, so label windows cannot be checked; no production refit",
            source,
        )
    elif params.production_refit:
        production = _production_model(
            snapshots, model, settings, rounds, params, horizon_days, source, diagnostics
        )
    return TrainResult(model, rounds, scores, diagnostics, production)


def _holdout_bound(snapshots: pd.DataFrame, roles: pd.Series, source: str) -> dict[str, Any]:
    """Return the in-time holdout's record: every test customer's stable hash is below
    `share_below` and every customer the model fitted or calibrated on is at or above it."""
    share = pd.Series(
        customer_share(snapshots[CUSTOMER_ID].reset_index(drop=True), "holdout"),
        index=snapshots.index,
    )
    trained = share[roles.isin([FIT, CALIBRATION])]
    test = share[roles == TEST]
    if test.empty or trained.empty or test.max() >= trained.min():
        raise ChurnError(
            f"{source}: test rows overlap the fit rows' label windows in time, but the test "
            "customers are not the stable-hash holdout (features.roles.holdout_share); rebuild "
            "features with `dvc repro features`"
        )
    return {"hash": "holdout", "share_below": float(trained.min())}


def _cutoff_range(rows: pd.DataFrame) -> list[str]:
    """Return [oldest, newest] cutoff of `rows` as ISO dates."""
    cutoffs = pd.to_datetime(rows[CUTOFF])
    return [str(cutoffs.min().date()), str(cutoffs.max().date())]


def out_of_time_scores(model: ChurnModel, rows: pd.DataFrame) -> dict[str, Any]:
    """Return ROC AUC, PR AUC, log loss, Brier and ECE of `model` on `rows` (labelled, never
    fitted on), with the cutoff, row count and ECE binning they were measured with."""
    scores = probability_metrics(rows[CHURNED].to_numpy("int64"), model.predict_proba(rows))
    return {
        "cutoff": _cutoff_range(rows)[1],
        "rows": int(len(rows)),
        **scores,
        "ece_bins": ECE_BINS,
    }


def _production_model(
    snapshots: pd.DataFrame,
    evaluation: ChurnModel,
    settings: dict[str, Any],
    rounds: int,
    params: TrainParams,
    horizon_days: int | None,
    source: str,
    diagnostics: dict[str, float],
) -> ChurnModel | None:
    """Roll the evaluation recipe forward one block: train through the test cutoff, calibrate there.

    The booster is fitted, with the same settings and rounds, on every cutoff whose label window
    ends by the test cutoff plus the early-stopping share of the test cutoff's customers (by the
    same stable hash); the calibrator of the kind chosen for the evaluation model is fitted on the
    other test customers, whose labels the booster never read. Gap cutoffs whose windows reach
    past the test cutoff are left out. Returns None (with a warning) when the held-out test
    customers cannot calibrate: none, or only one label value among them.
    """
    roles = snapshots[ROLE].astype("string")
    test = _canonical(snapshots[roles == TEST])
    trained_on = customer_share(test[CUSTOMER_ID], "early_stopping") < params.early_stopping_share
    held = test[~trained_on]
    if held.empty or held[CHURNED].nunique() < 2:
        log.warning(
            "%s: the held-out customers of the test cutoff are %d row(s) with %d label value(s); "
            "no production refit — the evaluation model is the challenger",
            source,
            len(held),
            held[CHURNED].nunique(),
        )
        return None
    test_cutoff = pd.to_datetime(test[CUTOFF]).min()
    cutoffs = pd.to_datetime(snapshots[CUTOFF])
    if horizon_days is None:
        labelled = roles.isin([FIT, CALIBRATION])
    else:
        # every label window (t, t + H] ends on or before the test cutoff
        labelled = roles.isin([FIT, CALIBRATION, GAP]) & labelled_by(
            cutoffs, horizon_days, test_cutoff
        )
    # the sample's ids first, then one selection: no copy of every labelled row on the way
    chosen = (
        None
        if params.sample_customers is None
        else sampled_ids(snapshots.loc[labelled, CUSTOMER_ID], params.sample_customers)
    )
    if chosen is not None:
        labelled = labelled & snapshots[CUSTOMER_ID].astype("string").isin(chosen)
    labelled = np.array(labelled, dtype=bool)  # a copy: marked below
    training_cutoffs = _cutoff_range(snapshots.loc[labelled, [CUTOFF]])
    # the older rows plus the test rows trained on, taken from the snapshots in one copy
    test_mask = (roles == TEST).to_numpy(bool, na_value=False)
    share = customer_share(snapshots.loc[test_mask, CUSTOMER_ID], "early_stopping")
    labelled[np.flatnonzero(test_mask)[share < params.early_stopping_share]] = True
    rows = _select_canonical(snapshots, labelled)
    spec = evaluation.spec
    y = rows[CHURNED].to_numpy("int64")
    n_rows, n_cutoffs = len(rows), int(rows[CUTOFF].nunique())
    # LightGBM bins one matrix of the rows, which are dropped before boosting
    dataset = lightgbm_dataset(
        spec,
        rows,
        y,
        row_weights(rows, y, params),
        settings,
        source,
        init_score=cutoff_offsets(rows, y, params),
    )
    del rows
    booster = lgb.train(
        settings,
        dataset,
        num_boost_round=rounds,
        callbacks=[progress("production refit", n_rows, rounds)],
    )
    del dataset
    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
    raw = ChurnModel(booster, Calibrator(), spec).predict_raw(held)
    y_held = held[CHURNED].to_numpy("int64")
    column = evaluation.calibrator.column
    calibrator = (
        fit_stack(raw, held[column].astype("float64").to_numpy(), y_held, column)
        if evaluation.calibrator.kind == "stack" and column is not None
        else _fit_calibrator(evaluation.calibrator.kind, raw, y_held)
    )
    out_of_time = out_of_time_scores(evaluation, test)
    info = {
        **evaluation.metadata,
        "role": "production",
        # cutoffs trained on with every customer; plus part of the held-out cutoff (below)
        "training_cutoffs": training_cutoffs,
        "calibration_cutoff": str(test_cutoff.date()),
        "held_out": {
            "cutoff": str(test_cutoff.date()),
            "hash": "early_stopping",
            "share_from": params.early_stopping_share,
        },
        # the evaluation model's score on the whole test cutoff: the recipe's out-of-time quality,
        # which the promotion gate uses for this model's calibration
        "out_of_time": out_of_time,
    }
    diagnostics.update(
        {
            "production_rows": float(n_rows),
            "production_cutoffs": float(n_cutoffs),
            "production_rows_calibration": float(len(held)),
            "production_test_roc_auc": roc_auc(y_held, raw),
            "production_test_pr_auc": pr_auc(y_held, raw),
            "evaluation_test_ece": float(out_of_time["ece"]),
        }
    )
    return ChurnModel(booster, calibrator, spec, info)


# the gate's fallback (promote.fallback): the snapshot column each simple baseline of
# churn.evaluate ranks by, and the direction in which it raises the churn risk
BASELINE_COLUMNS = {
    "recency": ("recency_days", 1),
    "frequency": ("purchases", -1),
    "bgnbd": ("bgnbd_expected_purchases", -1),
    "bgnbd_no_purchase": ("bgnbd_p_no_purchase", 1),
}


def fit_baseline_model(
    snapshots: pd.DataFrame,
    baseline: str,
    horizon_days: int | None,
    seed: int = 0,
    source: str = "snapshots",
) -> ChurnModel:
    """Return a model that ranks like one simple baseline: LightGBM on that baseline's snapshot
    column alone, monotone in its direction, calibrated on held-out customers like any model.

    It is the gate's fallback when no champion exists and the first challenger ranks worse than
    the baseline: marketing still gets a list, scored by the baseline and labelled as such
    (metadata "fallback"). No production refit: it is the evaluation recipe (fit cutoffs,
    calibration cutoff), so the gate can measure it on the test rows it never read.
    """
    if baseline not in BASELINE_COLUMNS:
        raise ChurnError(
            f"{source}: no fallback model for baseline {baseline!r}; "
            f"known: {sorted(BASELINE_COLUMNS)}"
        )
    column, direction = BASELINE_COLUMNS[baseline]
    if column not in snapshots.columns:
        raise ChurnError(
            f"{source}: the fallback on baseline {baseline!r} needs the snapshot column "
            f"{column!r}, which is not there"
            + (" (turn on features.bgnbd)" if column.startswith("bgnbd") else "")
        )
    params = TrainParams(
        seed=seed,
        # one numeric feature: fine bins and every row, so the order is the baseline's own
        lightgbm=LightGBMParams(
            max_bin=1023,
            num_leaves=63,
            min_data_in_leaf=20,
            feature_fraction=1.0,
            bagging_fraction=1.0,
            bagging_freq=0,
        ),
        monotone={column: direction},
        production_refit=False,
        sample_customers=None,
        stack_bgnbd=False,  # the baseline alone, never blended with another
    )
    rows = snapshots[[*KEY_COLUMNS, column]]
    metadata = {"fallback": {"baseline": baseline, "column": column, "direction": direction}}
    return fit_model(rows, params, horizon_days, source, metadata).model


def run(
    settings: Any,  # churn.config.StageParams: churn, train, registry
    snapshots: Path,
    out: Path,
    evaluation_out: Path,
    campaigns: Path | None,
    tracking: bool,
) -> None:
    """The `train` stage: fit on the snapshots (leaving out campaign-treated rows), write the
    challenger to `out` and the evaluation model to `evaluation_out`; with `tracking`, log the
    run and register the challenger in MLflow."""
    from churn import tracking as mlflow_tracking
    from churn.definition import describe_definition
    from churn.files import read_input_parquet
    from churn.model import MODEL_FILE

    frame, customers_fit = read_training_snapshots(
        snapshots, settings.train, settings.churn.horizon_days
    )
    fingerprint = mlflow_tracking.data_fingerprint(frame, snapshots)
    definition = describe_definition(settings.churn, feature_columns(frame, str(snapshots)))
    contacted = (
        read_input_parquet(campaigns, "campaign contacts") if campaigns is not None else None
    )
    frame, excluded = exclude_campaign_contacts(frame, contacted, settings.churn.horizon_days)
    log.info(
        "campaigns: %d training rows of %d customers left out (treated while their label was "
        "being observed); the model learns from control and never-listed customers",
        excluded["rows_excluded"],
        excluded.get("customers_excluded", 0),
    )
    result = fit_model(
        frame,
        settings.train,
        settings.churn.horizon_days,
        str(snapshots),
        metadata={"data": fingerprint, "definition": definition, "campaigns": excluded},
        customers_fit=customers_fit,
    )
    model = result.production_model
    # each folder is written once and holds no run id: DVC tracks it, so it must be reproducible
    model.save(out)
    evaluation_shas = result.model.save(evaluation_out)
    log.info(
        "trained %d rounds on %d fit rows; calibrator %s; held-out calibration log loss %.4f",
        result.rounds,
        int(result.diagnostics["rows_fit"]),
        model.calibrator.kind,
        result.diagnostics["calibration_logloss"],
    )
    if result.production is not None:
        log.info(
            "production refit on %d rows over %d cutoffs, calibrated on the test customers it "
            "did not train on; its booster ranks them at ROC AUC %.4f",
            int(result.diagnostics["production_rows"]),
            int(result.diagnostics["production_cutoffs"]),
            result.diagnostics["production_test_roc_auc"],
        )
    if not tracking:
        return
    root = Path.cwd()
    names = settings.registry
    record = mlflow_tracking.log_training(
        mlflow_tracking.tracking_uri(root),
        names.training_experiment,
        names.model,
        out,
        {"churn": settings.churn.model_dump(mode="json"), "train": settings.train.model_dump()},
        result.diagnostics,
        {
            **mlflow_tracking.git_revision(root),
            "definition": definition["fingerprint"],
            "evaluation": model.evaluation,  # out_of_time, or in_time_holdout (short history)
        },
        fingerprint,
        mlflow_tracking.synthetic_input_example(model, frame[frame[ROLE] == "fit"]),
        extra_shas={mlflow_tracking.EVALUATION_SHA_TAG: evaluation_shas[MODEL_FILE]},
    )
    log.info(
        "MLflow run %s: %s version %s is now @challenger",
        record.run_id,
        record.model_name,
        record.model_version,
    )
