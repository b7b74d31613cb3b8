"""The simulated past campaigns: lists, contacts and true effects that the data really carries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.config import CampaignsParams, GenerateParams, TiersParams
from churn.generate import (
    CAMPAIGN_LISTS_COLUMNS,
    CONTACTS_COLUMNS,
    LOST_CAUSE,
    PERSUADABLE,
    RAW_AMOUNT,
    RAW_CUSTOMER,
    RAW_TIMESTAMP,
    SLEEPING_DOG,
    SURE_THING,
    campaign_days,
    overdue_churn_probability,
    simulate,
)


def _run(tiers=None, **campaigns):
    params = GenerateParams(
        customers=3000, chunk_customers=1500, seed=11, campaigns=CampaignsParams(**campaigns)
    )
    chunks = list(simulate(params, tiers))
    frames = {
        name: pd.concat([getattr(c, name) for c in chunks], ignore_index=True)
        for name in ("transactions", "campaign_lists", "contacts", "campaign_truth")
    }
    return params, frames


@pytest.fixture(scope="module")
def generated():
    return _run()


def _purchase_days(transactions):
    amount = pd.to_numeric(transactions[RAW_AMOUNT], errors="coerce")
    when = pd.to_datetime(transactions[RAW_TIMESTAMP], errors="coerce", format="%Y-%m-%d %H:%M:%S")
    ok = (amount > 0) & np.isfinite(amount) & when.notna() & (transactions[RAW_CUSTOMER] != "")
    return pd.DataFrame(
        {"customer_id": transactions.loc[ok, RAW_CUSTOMER], "date": when[ok].dt.normalize()}
    ).drop_duplicates()


def test_list_dates_step_back_one_horizon_from_the_last_day():
    params = GenerateParams()
    assert campaign_days(params) == [1094 - 360, 1094 - 270, 1094 - 180, 1094 - 90]
    assert campaign_days(GenerateParams(campaigns=CampaignsParams(enabled=False))) == []


def test_lists_and_contacts_have_their_documented_columns_and_a_control_share(generated):
    _, frames = generated
    lists, contacts = frames["campaign_lists"], frames["contacts"]
    assert list(lists.columns) == CAMPAIGN_LISTS_COLUMNS
    assert list(contacts.columns) == CONTACTS_COLUMNS
    assert lists["list_id"].nunique() == 4
    share = (lists["group"] == "control").mean()
    assert 0.06 < share < 0.14  # the configured 10%
    assert not lists.duplicated(["list_id", "customer_id"]).any()


def test_contacts_show_non_compliance_and_a_few_control_crossovers(generated):
    _, frames = generated
    truth = frames["campaign_truth"]
    treated = truth[truth["group"] == "treatment"]
    control = truth[truth["group"] == "control"]
    assert 0.6 < treated["contacted"].mean() < 0.8  # reach_rate 0.7: not everyone is reached
    assert control["contacted"].mean() < 0.05
    assert len(frames["contacts"]) == int(truth["contacted"].sum())
    assert set(frames["contacts"]["channel"]) <= {"email", "phone"}


def test_every_type_occurs_and_their_shares_differ_by_channel(generated):
    _, frames = generated
    truth = frames["campaign_truth"]
    assert set(truth["true_type"]) == {PERSUADABLE, SURE_THING, LOST_CAUSE, SLEEPING_DOG}
    # the types follow the potential outcomes they are defined by
    by_type = truth.groupby("true_type")[["retained_without_contact", "retained_with_contact"]]
    means = by_type.mean()
    assert means.loc[PERSUADABLE].tolist() == [0.0, 1.0]
    assert means.loc[LOST_CAUSE].tolist() == [0.0, 0.0]
    assert means.loc[SURE_THING].tolist() == [1.0, 1.0]
    assert means.loc[SLEEPING_DOG, "retained_without_contact"] == 1.0


def test_the_observed_outcome_in_the_transactions_is_the_true_potential_outcome(generated):
    _, frames = generated
    truth = frames["campaign_truth"]
    purchases = _purchase_days(frames["transactions"])
    for list_date, rows in truth.groupby("list_date"):
        inside = purchases[
            (purchases["date"] > list_date)
            & (purchases["date"] <= list_date + pd.Timedelta(days=90))
        ]
        observed = rows["customer_id"].isin(set(inside["customer_id"])).to_numpy()
        expected = np.where(
            rows["contacted"], rows["retained_with_contact"], rows["retained_without_contact"]
        )
        assert (observed == expected).mean() > 0.995, list_date  # refund-only days aside


def test_campaigns_are_deterministic_and_can_be_switched_off_or_made_ineffective(generated):
    _, frames = generated
    _, again = _run()
    pd.testing.assert_frame_equal(frames["campaign_truth"], again["campaign_truth"])
    pd.testing.assert_frame_equal(frames["transactions"], again["transactions"])
    _, off = _run(enabled=False)
    assert off["campaign_lists"].empty and off["contacts"].empty
    _, none = _run(effect=0.0)
    assert (none["campaign_truth"]["true_effect"] == 0).all()


def _tier_churn(frames):
    """Each listed customer's tier beside whether they would churn without a contact."""
    truth = frames["campaign_truth"][["list_id", "customer_id", "retained_without_contact"]]
    rows = frames["campaign_lists"].merge(truth, on=["list_id", "customer_id"], validate="1:1")
    return rows.assign(churned=~rows["retained_without_contact"].astype(bool))


def test_list_tiers_are_the_pipelines_thresholds_on_a_calibrated_probability():
    tiers = TiersParams(high=0.5, medium=0.2)
    _, frames = _run(tiers)
    rows = _tier_churn(frames)
    by_tier = rows.groupby("risk_tier")["churned"].agg(["mean", "size"])
    assert by_tier["size"].get("medium", 0) >= 100  # the list is not all one tier
    assert set(by_tier.index) <= {"high", "medium", "low"} and "high" in by_tier.index
    # each tier's churn without a contact lies in that tier's probability range, as the
    # pipeline's tiers of a calibrated model do
    assert by_tier.loc["high", "mean"] >= tiers.high
    for tier, low, high in (("medium", tiers.medium, tiers.high), ("low", 0.0, tiers.medium)):
        if by_tier["size"].get(tier, 0) >= 100:  # enough customers to read a rate
            assert low <= by_tier.loc[tier, "mean"] < high, (tier, by_tier)
    # other thresholds give other tiers; the simulated data itself does not change
    _, stricter = _run(TiersParams(high=0.9, medium=0.6))
    pd.testing.assert_frame_equal(frames["transactions"], stricter["transactions"])
    assert (stricter["campaign_lists"]["risk_tier"] == "high").mean() < (
        frames["campaign_lists"]["risk_tier"] == "high"
    ).mean()


def test_the_tier_probability_is_calibrated_and_ranks_by_how_overdue():
    rng = np.random.default_rng(3)
    ratio = rng.uniform(2, 12, 4000)
    purchases = rng.integers(2, 30, 4000)
    truth = 1 / (1 + np.exp(-(-1.0 + 1.5 * np.log(ratio) - 0.3 * np.log(purchases))))
    churned = rng.random(4000) < truth
    p = overdue_churn_probability(ratio, purchases, churned)
    assert p.mean() == pytest.approx(churned.mean(), abs=1e-6)  # calibrated overall
    assert np.corrcoef(p, truth)[0, 1] > 0.95
    assert (
        overdue_churn_probability(ratio[:3], purchases[:3], np.ones(3, bool)).tolist() == [1.0] * 3
    )
    assert overdue_churn_probability(ratio[:0], purchases[:0], churned[:0]).size == 0
