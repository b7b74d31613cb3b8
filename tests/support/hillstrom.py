"""The Hillstrom e-mail experiment (tests/support/data/hillstrom.csv.xz) as uplift campaign rows."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from support.paths import ROOT

HILLSTROM = ROOT / "tests" / "support" / "data" / "hillstrom.csv.xz"
FEATURES = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]
CONTROL_ARM = "No E-Mail"


def hillstrom_rows(arm: str = "Womens E-Mail", outcome: str = "visit") -> pd.DataFrame:
    """Return one e-mail arm against the no-e-mail arm: treated, retained (= the outcome), the
    arm's control share, and the customer attributes as features."""
    raw = pd.read_csv(HILLSTROM)
    two = raw[raw["segment"].isin([arm, CONTROL_ARM])].reset_index(drop=True)
    treated = (two["segment"] == arm).to_numpy().astype("int8")
    frame = two[FEATURES].copy()
    frame.insert(0, "treated", treated)
    frame.insert(1, "retained", two[outcome].astype("int8"))
    frame.insert(2, "control_share", float(1 - treated.mean()))
    return frame


def split_rows(rows: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a 70/30 train/test split stratified by arm and outcome."""
    strata = rows["treated"].to_numpy() * 2 + rows["retained"].to_numpy()
    train, test = train_test_split(rows, test_size=0.3, random_state=seed, stratify=strata)
    return train.reset_index(drop=True), test.reset_index(drop=True)
