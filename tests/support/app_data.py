"""Marketing page test data: hand-built published lists, real published records, a running page."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from churn.app.selection import list_choices, load_columns
from churn.app.store import LoadedList
from churn.publish.record import LIST_HEAD, LIST_TAIL, publish_lists
from churn.score.targeting import expected_net_benefit
from support.score_data import AS_OF, make_scores

ACTIONS = ("win-back offer", "service call", "personal recommendation")
FAMILIES = ("recency", "nps", "spend_trend")


def list_frame(rows: list[tuple], group: str = "treatment", cost: float = 5.0) -> pd.DataFrame:
    """Return a published-list frame from (priority, id, probability, tier, value, channel, action).

    Rounded as publish rounds them; net benefit from the pipeline's formula at save rate 0.1.
    """
    priority, ids, probability, tiers, value, channel, action = map(list, zip(*rows, strict=True))
    probability = np.round(np.asarray(probability, dtype="float64"), 4)
    value = np.round(np.asarray(value, dtype="float64"), 2)
    frame = pd.DataFrame(
        {
            "priority": np.asarray(priority, dtype="int64"),
            "customer_id": pd.array(ids, dtype="string"),
            "churn_probability": probability,
            "risk_tier": pd.array(tiers, dtype="string"),
            "expected_value": value,
            "value_at_risk": np.round(probability * value, 2),
            "expected_net_benefit": np.round(
                expected_net_benefit(probability, 0.1, value, cost), 2
            ),
            "reasons": pd.array([f"no purchase for {p} days" for p in priority], dtype="string"),
            "suggested_action": pd.array(action, dtype="string"),
            "channel": pd.array(channel, dtype="string"),
            "group": pd.array([group] * len(ids), dtype="string"),
            "as_of": [AS_OF] * len(ids),
            "model_version": pd.array(["7"] * len(ids), dtype="string"),
        }
    )
    assert list(frame.columns) == [*LIST_HEAD, "channel", *LIST_TAIL]
    return frame


TREATMENT_ROWS = [
    (1, "0001", 0.91, "high", 300.0, "web", "win-back offer"),
    (2, "0002", 0.80, "high", 250.0, "app", "service call"),
    (4, "0004", 0.62, "high", 200.0, "web", "win-back offer"),
    (5, "0005", 0.45, "medium", 400.0, "store", "personal recommendation"),
    (7, "0107", 0.30, "medium", 500.0, "web", "win-back offer"),
    (8, "0008", 0.25, "medium", 100.0, "app", "win-back offer"),
]
CONTROL_ROWS = [
    (3, "0003", 0.85, "high", 280.0, "web", "win-back offer"),
    (6, "0006", 0.40, "medium", 150.0, "app", "service call"),
]
TREATMENT_FAMILIES = ["recency", "nps", "recency", "spend_trend", "recency", "nps"]
CONTROL_FAMILIES = ["recency", "nps"]


def example_loaded(treatment_rows=TREATMENT_ROWS, control_rows=CONTROL_ROWS) -> LoadedList:
    """Return a small LoadedList (6 to contact, 2 control) built like the store builds one."""
    treatment = list_frame(treatment_rows)
    control = list_frame(control_rows, group="control")
    t_columns = load_columns(
        treatment, ["channel"], pd.Series(TREATMENT_FAMILIES[: len(treatment)], dtype="string")
    )
    c_columns = load_columns(
        control, ["channel"], pd.Series(CONTROL_FAMILIES[: len(control)], dtype="string")
    )
    manifest = {"as_of": str(AS_OF), "model_version": "7", "sha256": "ab" * 32, "path": "x"}
    return LoadedList(
        key="example",
        manifest=manifest,
        treatment=t_columns,
        control=c_columns,
        choices=list_choices(t_columns, c_columns),
        columns=tuple(str(c) for c in treatment.columns),
    )


def example_scores(customers: int = 400, seed: int = 1, **options) -> pd.DataFrame:
    """Return a scores table (real score_customers) whose flagged customers vary in action and
    main reason, so every filter of the page has something to choose."""
    scores = make_scores(customers, seed=seed, **options)
    flagged = scores["at_risk"].to_numpy(dtype=bool)
    positions = np.flatnonzero(flagged)
    actions = scores["suggested_action"].copy()
    families = scores["reason_family"].copy()
    actions.iloc[positions] = [ACTIONS[i % len(ACTIONS)] for i in range(len(positions))]
    families.iloc[positions] = [FAMILIES[i % len(FAMILIES)] for i in range(len(positions))]
    return scores.assign(suggested_action=actions, reason_family=families)


def publish_example(root: Path, customers: int = 400, seed: int = 1, **options) -> dict:
    """Publish an example list with the real record writer; return its manifest."""
    return publish_lists(example_scores(customers, seed, **options), root).manifest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_app(config, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve the page (uvicorn, in a thread) on a free port; yield its base URL."""
    import uvicorn

    from churn.app.server import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host=host, port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the page did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def app_config(exports: Path, **options):
    """Return an AppConfig over `exports` with the params' defaults (contact cost 5, save 10%)."""
    from churn.app.server import AppConfig
    from churn.config import ScoreParams
    from churn.score.targeting import save_rates_by_tier

    params = ScoreParams()
    settings = {
        "exports": exports,
        "suppression": None,
        "backtest": None,
        "report_page": None,
        "contact_cost": params.contact_cost,
        "save_rates": save_rates_by_tier(params),
        "save_rate_measured": False,
        "horizon_days": 90,
        "expected_value_days": params.expected_value_days,
        **options,
    }
    return AppConfig(**settings)
