"""MLflow models-from-code entry: a pyfunc returning calibrated churn probabilities (no pickles).

MLflow loads this file by path (see churn.tracking.log_training); it is not imported by the package.
The model folder (Booster text, calibrator, feature spec, metadata) is its one artifact.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd


class ChurnPyfunc(mlflow.pyfunc.PythonModel):
    """Wraps churn.model.ChurnModel: predict(frame) -> calibrated probability per row."""

    def load_context(self, context) -> None:  # noqa: ANN001 - MLflow's signature
        """Load the model folder logged as the `model_dir` artifact."""
        from churn.model import ChurnModel

        self.model = ChurnModel.load(context.artifacts["model_dir"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:  # noqa: ANN001
        """Return calibrated churn probabilities, one per input row, in input order."""
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.predict_proba(frame)


mlflow.models.set_model(ChurnPyfunc())
