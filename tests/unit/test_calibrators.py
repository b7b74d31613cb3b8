"""Platt and isotonic calibration on known maps: recover the map, keep the ranking."""

from __future__ import annotations

import numpy as np
import pytest

from churn.train import fit_isotonic, fit_platt


def test_platt_recovers_a_known_logistic_map():
    rng = np.random.default_rng(4)
    raw = rng.uniform(0.02, 0.98, 40_000)
    logit = np.log(raw / (1 - raw))
    labels = (rng.random(raw.size) < 1 / (1 + np.exp(-(1.7 * logit - 0.4)))).astype(int)
    calibrator = fit_platt(raw, labels)
    assert calibrator.a == pytest.approx(1.7, abs=0.06)
    assert calibrator.b == pytest.approx(-0.4, abs=0.05)


def test_isotonic_calibrator_is_strictly_increasing_so_ranking_survives():
    rng = np.random.default_rng(6)
    raw = rng.random(2000)
    labels = (rng.random(2000) < raw**2).astype(int)
    calibrator = fit_isotonic(raw, labels)
    grid = np.linspace(0, 1, 1001)
    assert (np.diff(calibrator.apply(grid)) > 0).all()
    assert calibrator.apply(grid).min() > 0 and calibrator.apply(grid).max() < 1
