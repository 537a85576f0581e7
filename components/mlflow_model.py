"""The MLflow model that the Pusher registers: a pyfunc that takes node ids.

`predict` takes a DataFrame with an `id` column and returns one row per id: `id`,
`prediction`, `probabilities`, `embedding` (see `node_scoring`). The model bundles the
SavedModel (artifact `saved_model`) and the ServingSpec (artifact `serving_spec`: the sampling
spec, seed and salt, and the Graph artifact's directory, which it samples from on request).

Bad input (no `id` column, unknown ids, ids of another node set, a Graph artifact that is gone)
raises MlflowException(INVALID_PARAMETER_VALUE): MLflow's scoring server answers HTTP 400 with
the message.

Loading and serving are MLflow's own: `mlflow.pyfunc.load_model("models:/<name>@champion")`,
`mlflow models serve -m models:/<name>@champion --env-manager local`.
"""
from __future__ import annotations

import importlib.metadata
import os
import tempfile

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import signature as signature_lib
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import schema as schema_lib

from tfx_gnn.components import node_scoring

SAVED_MODEL = "saved_model"
SPEC = "serving_spec"
ARTIFACT_PATH = "serving_model"  # in the trainer's MLflow run
CHAMPION = "champion"  # the registry alias of the last blessed version


class NodeIdModel(mlflow.pyfunc.PythonModel):
  """Scores nodes by id (see the module docstring)."""
  # The logged signature validates the input; MLflow's type-hint validation (and its warning,
  # at class definition, that `predict` has no type hints) is not needed.
  _skip_type_hint_validation = True

  def load_context(self, context):
    with open(context.artifacts[SPEC]) as f:
      self._spec_json = f.read()
    self._model_dir = context.artifacts[SAVED_MODEL]
    self._scorer = None  # sampled from the graph on the first request (it may be gone)

  def predict(self, context, model_input, params=None):
    if not isinstance(model_input, pd.DataFrame) or "id" not in model_input.columns:
      raise MlflowException("expected a table with an `id` column of node ids",
                            error_code=INVALID_PARAMETER_VALUE)
    try:
      if self._scorer is None:
        self._scorer = node_scoring.NodeScorer(
            self._model_dir, node_scoring.ServingSpec.from_json(self._spec_json))
      return pd.DataFrame(self._scorer.score(model_input["id"].tolist()))
    except node_scoring.ScoringError as e:
      raise MlflowException(str(e), error_code=INVALID_PARAMETER_VALUE) from None


def model_signature(task: str) -> signature_lib.ModelSignature:
  prediction = "double" if task == "root_node_regression" else "long"
  floats = schema_lib.Array(schema_lib.DataType.float)
  return signature_lib.ModelSignature(
      inputs=schema_lib.Schema([schema_lib.ColSpec("string", "id")]),
      outputs=schema_lib.Schema([
          schema_lib.ColSpec("string", "id"), schema_lib.ColSpec(prediction, "prediction"),
          schema_lib.ColSpec(floats, "probabilities"), schema_lib.ColSpec(floats, "embedding")]))


def save(path: str, model_dir: str, spec: node_scoring.ServingSpec,
         example_ids: list[str]) -> None:
  """Writes the MLflow model to the local directory `path` (which must not exist)."""
  with tempfile.TemporaryDirectory() as tmp:
    spec_file = os.path.join(tmp, "serving_spec.json")
    with open(spec_file, "w") as f:
      f.write(spec.to_json())
    mlflow.pyfunc.save_model(
        path, python_model=NodeIdModel(), artifacts={SAVED_MODEL: model_dir, SPEC: spec_file},
        signature=model_signature(spec.task),
        # The package that defines the model (and pins the stack); MLflow's own inference of
        # requirements loads the model in a subprocess (10+ s of every push).
        pip_requirements=[f"tfx-gnn=={importlib.metadata.version('tfx-gnn')}"],
        input_example=pd.DataFrame({"id": [str(i) for i in example_ids]}))


def log(client, run_id: str, model_dir: str, spec: node_scoring.ServingSpec,
        example_ids: list[str]) -> str:
  """Logs the model into the run, under ARTIFACT_PATH; returns that path."""
  with tempfile.TemporaryDirectory() as tmp:
    local = os.path.join(tmp, ARTIFACT_PATH)
    save(local, model_dir, spec, example_ids)
    client.log_artifacts(run_id, local, ARTIFACT_PATH)
  return ARTIFACT_PATH
