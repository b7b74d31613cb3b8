"""params.yaml loading: typed, frozen, and unknown keys are errors that name the key."""

from __future__ import annotations

import pydantic
import pytest

from churn.config import check_sections, load_params, parse_params
from churn.errors import ChurnError


def test_misspelt_key_is_an_error_naming_the_key_and_the_fix():
    with pytest.raises(ChurnError) as caught:
        parse_params({"generate": {"custmers": 10}})
    message = str(caught.value)
    assert "generate.custmers" in message
    assert "did you mean 'customers'" in message


def test_unknown_section_is_an_error():
    with pytest.raises(ChurnError, match="genrate: unknown key"):
        parse_params({"genrate": {}})


def test_a_stale_past_lists_key_says_to_import_the_lists_with_the_command():
    with pytest.raises(ChurnError) as caught:
        parse_params({"ledger": {"past_lists": "data/raw/campaign_lists.csv"}})
    message = str(caught.value)
    assert "ledger: no longer read" in message
    assert "`churn import-lists FILE`" in message and "did you mean" not in message


def test_a_stale_contact_log_key_says_where_the_path_is_written_now():
    with pytest.raises(ChurnError) as caught:
        parse_params({"backtest": {"contact_log": "data/raw/contacts.csv"}})
    message = str(caught.value)
    assert "backtest.contact_log: no longer read" in message
    assert "`--contacts PATH`" in message and "dvc.yaml" in message


def test_invalid_value_names_key_and_value():
    with pytest.raises(ChurnError) as caught:
        parse_params({"generate": {"customers": -3}})
    assert "generate.customers = -3" in str(caught.value)


def test_params_are_frozen():
    params = parse_params({})
    with pytest.raises(pydantic.ValidationError):
        params.generate.seed = 1  # type: ignore[misc]


def test_missing_params_file_names_the_file(tmp_path):
    with pytest.raises(ChurnError, match="not found"):
        load_params(tmp_path / "params.yaml")


def test_broken_yaml_names_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("generate: [unclosed\n")
    with pytest.raises(ChurnError, match="not valid YAML"):
        load_params(path)


def test_the_churn_definition_has_one_home():
    """Horizon, active window and as-of live only in `churn`: a copy elsewhere is an error."""
    for section in ("features", "report"):
        with pytest.raises(ChurnError, match=f"{section}.horizon_days: unknown key"):
            parse_params({section: {"horizon_days": 60}})
    params = parse_params({"churn": {"horizon_days": 60}})
    assert params.churn.horizon_days == 60


def test_the_active_window_must_cover_a_report_period():
    with pytest.raises(ChurnError, match="churn.active_within_days = 20 is shorter than a month"):
        parse_params({"churn": {"active_within_days": 20}})
    assert parse_params({"churn": {"active_within_days": 20}, "report": {"period": "week"}})


def test_a_stage_sees_only_the_sections_it_declares():
    view = parse_params({}).select("churn", "engine")
    assert view.names == ("churn", "engine")
    with pytest.raises(AttributeError, match="not declared for this stage"):
        view.train  # noqa: B018


def test_a_stage_declaring_one_key_of_a_section_sees_that_key_only():
    view = parse_params({"score": {"tiers": {"high": 0.6, "medium": 0.3}}}).select(
        "generate", "score.tiers"
    )
    assert view.names == ("generate", "score")
    assert view.score.tiers.high == 0.6
    with pytest.raises(AttributeError, match="'score.contact_cost' is not declared"):
        view.score.contact_cost  # noqa: B018
    # a whole section declared beside one of its keys: the whole section
    assert parse_params({}).select("score.tiers", "score").score.contact_cost == 5.0
    with pytest.raises(ValueError, match="score.tier"):
        parse_params({}).select("score.tier")


def test_the_check_names_a_declared_key_missing_from_params_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("generate: {seed: 1}\nscore: {contact_cost: 4.0}\n")
    with pytest.raises(ChurnError, match=r"\['score.tiers'\] missing"):
        check_sections(path, {"generate", "score.tiers"})
    path.write_text("generate: {seed: 1}\nscore: {tiers: {high: 0.5}}\n")
    assert check_sections(path, {"generate", "score.tiers"}) == ["generate", "score"]


def test_the_apps_currency_is_checked_like_every_key():
    assert parse_params({}).app.currency == "¤"  # the generic sign: the data names no currency
    assert parse_params({"app": {"currency": "EUR"}}).app.currency == "EUR"
    with pytest.raises(ChurnError, match="did you mean 'currency'"):
        parse_params({"app": {"curency": "€"}})
    for bad in ("", "euro dollars", "<b>"):
        with pytest.raises(ChurnError, match="app.currency"):
            parse_params({"app": {"currency": bad}})
