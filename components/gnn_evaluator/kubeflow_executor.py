"""GnnEvaluator's executor as Kubeflow runs it: ours, and a TFX Evaluator executor by class.

TFX's Kubeflow v2 container entrypoint rewrites a blessing's `current_model_id` and
`baseline_model_id` from TFX's integer ids to the metadata store's artifact names, which the
compiled "latest blessed model" resolver query matches, but only for subclasses of TFX's
Evaluator executor. `Do` is entirely ours; the base class costs an import of TensorFlow Model
Analysis, which the container's entrypoint makes anyway and local runs are spared.
"""
from tfx.components.evaluator import executor as tfx_evaluator_executor

from tfx_gnn.components.gnn_evaluator import executor


class Executor(executor.Executor, tfx_evaluator_executor.Executor):
  pass
