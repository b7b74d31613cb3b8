"""params.yaml -> typed, frozen, validated objects; unknown or misspelt keys are errors."""

from __future__ import annotations

import difflib
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from churn.errors import ChurnError


class Section(BaseModel):
    """Base for every params section: frozen, and unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- generate
class GenerateParams(Section):
    """Synthetic default data: `churn generate` (the `generate` DVC stage)."""

    seed: int = 42
    customers: int = Field(50_000, ge=10)
    start: str = "2023-01-01"  # first calendar day of the simulated period (ISO date)
    days: int = Field(1095, ge=60)  # length of the simulated period
    mean_purchases_per_year: float = Field(20.0, gt=0)  # population mean of the purchase rate
    rate_shape: float = Field(0.9, gt=0)  # gamma shape of purchase rates (smaller = more spread)
    mean_lifetime_days: float = Field(900.0, gt=0)  # mean of the exponential dropout time
    mean_order_value: float = Field(45.0, gt=0)
    refund_share: float = Field(0.02, ge=0, lt=1)
    dirty_share: float = Field(0.004, ge=0, lt=0.05)  # malformed rows, to exercise the quarantine
    duplicate_share: float = Field(0.002, ge=0, lt=0.05)  # re-exported rows with the same order id
    with_customers: bool = True
    with_nps: bool = True
    nps_response_rate: float = Field(0.3, ge=0, le=1)
    timezone: str = "Europe/Berlin"  # wall-clock zone of the exported timestamps
    chunk_customers: int = Field(200_000, ge=100)  # customers simulated per chunk (bounds memory)


# --------------------------------------------------------------------------- features
class CutoffsParams(Section):
    """Training cutoffs: `count` dates `step_days` apart, the newest at as_of - horizon_days."""

    count: int = Field(12, ge=1)
    step_days: int = Field(30, ge=1)
    min_history_days: int = Field(90, ge=0)  # days of data a cutoff needs on or before it


class RolesParams(Section):
    """How training cutoffs are split by time into fit / calibration / test (rest: gap)."""

    calibration_cutoffs: int = Field(1, ge=1)  # newest cutoffs whose labels end before test starts


class FeaturesParams(Section):
    """Point-in-time snapshots and churn labels: `churn features` (the `features` DVC stage)."""

    horizon_days: int = Field(90, ge=1)  # churned = no purchase dated in (cutoff, cutoff + horizon]
    as_of: date | None = None  # the scored snapshot; null = last transaction date
    active_within_days: int = Field(
        365, ge=1
    )  # eligible: a purchase dated in (cutoff - this, cutoff]
    windows: tuple[int, ...] = (30, 90, 180, 365)  # trailing windows (cutoff - N, cutoff], days
    trend_days: int = Field(90, ge=1)  # trend: last N days against the N days before them
    cutoffs: CutoffsParams = CutoffsParams()
    roles: RolesParams = RolesParams()
    threads: int | None = Field(None, ge=1)  # DuckDB threads; null = all cores
    memory_limit: str = "2GB"  # DuckDB memory limit; it spills to a temp folder beyond it

    @model_validator(mode="after")
    def _windows_include_core(self) -> FeaturesParams:
        if 90 not in self.windows:
            raise ValueError(
                "windows must include 90 (spend_90d and purchases_90d are core features)"
            )
        if len(set(self.windows)) != len(self.windows) or any(w < 1 for w in self.windows):
            raise ValueError("windows must be distinct positive day counts")
        return self


# --------------------------------------------------------------------------- root
class Params(Section):
    """All of params.yaml. Each stage receives only the sections it declares in dvc.yaml."""

    generate: GenerateParams = GenerateParams()
    features: FeaturesParams = FeaturesParams()

    @model_validator(mode="before")
    @classmethod
    def _sections_are_mappings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None:
                    raise ValueError(f"section '{key}' is empty; remove it or give it keys")
        return data


def _suggest(loc: tuple[Any, ...], model: type[BaseModel]) -> str:
    """Return ' (did you mean ...?)' for a misspelt key, walking the model along loc."""
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None or not isinstance(field.annotation, type):
            return ""
        current = field.annotation
    names = list(getattr(current, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def format_validation_error(error: ValidationError, source: str) -> str:
    """Turn a pydantic error into lines naming the file, the key, the value and the fix."""
    lines = [f"{source}: {error.error_count()} invalid setting(s):"]
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc) or "<top level>"
        if item["type"] == "extra_forbidden":
            lines.append(
                f"  - {key}: unknown key{_suggest(loc, Params)}; remove it or fix its spelling"
            )
        else:
            value = item.get("input")
            shown = repr(value) if not isinstance(value, dict) else "{...}"
            lines.append(f"  - {key} = {shown}: {item['msg']}")
    return "\n".join(lines)


def parse_params(data: Any, source: str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ChurnError(
            f"{source}: expected a mapping of sections at the top, got {type(data).__name__}"
        )
    try:
        return Params.model_validate(data)
    except ValidationError as error:
        raise ChurnError(format_validation_error(error, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml once; raise ChurnError naming the file and key on any problem."""
    path = Path(path)
    if not path.exists():
        raise ChurnError(f"{path}: not found; run from the project folder or pass --params PATH")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ChurnError(f"{path}: not valid YAML: {error}") from None
    return parse_params(data, str(path))
