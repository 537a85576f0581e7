"""GraphIngest's driver: pins down the inputs before TFX looks up its cache.

TFX's portable launcher (what LocalDagRunner runs) calls a component's custom driver after
registering the execution and before computing the cache key from the execution properties
(tfx/orchestration/portable/launcher.py, `_prepare_execution`), as FileBasedExampleGen's
driver does. This one resolves `{SPAN}` patterns and adds `input_fingerprint`, `span` and
`version` to the execution properties: a changed table changes the key, so ingest (and all
that follows) runs again instead of being served from the cache. The executor re-checks the
fingerprint before reading.

On Kubeflow Pipelines v2, TFX runs a driver only for its own FileBasedExampleGen (a
`pre_cache_check` hook); there this driver does not run, the executor resolves the span and
records the fingerprint itself (so the lineage still shows it), and KFP's cache key does not
see the data: run with caching disabled, or give each run its own span.
"""
from tfx.dsl.components.base import base_driver
from tfx.orchestration import data_types_utils
from tfx.orchestration.portable import base_driver as ir_base_driver
from tfx.proto.orchestration import driver_output_pb2

from tfx_gnn.components.graph_ingest import inputs
from tfx_gnn.components.graph_ingest.config import DataConfig

UNRESOLVED = "unresolved: "  # a fingerprint that no successful execution has


def resolve_exec_properties(exec_properties: dict) -> dict:
  """The execution properties with the spans resolved and the fingerprint added."""
  out = dict(exec_properties)
  try:
    data, span, version = inputs.resolve_spans(
        DataConfig.model_validate_json(exec_properties["data_config"]))
    out.update({"data_config": data.model_dump_json(), inputs.SPAN_PROPERTY: span,
                inputs.FINGERPRINT_PROPERTY: inputs.fingerprint(data).text})
    if version is not None:
      out[inputs.VERSION_PROPERTY] = version
  except Exception as e:
    # Not raised here: the launcher would leave the execution RUNNING. The executor resolves
    # again and fails with this error, as a FAILED execution; meanwhile the key matches no
    # earlier run, so nothing stale is served from the cache.
    out[inputs.FINGERPRINT_PROPERTY] = f"{UNRESOLVED}{type(e).__name__}: {e}"
  return out


class Driver(base_driver.BaseDriver, ir_base_driver.BaseDriver):
  """Adds the inputs' fingerprint, span and version to the execution properties."""

  def __init__(self, metadata_handle):
    # Both bases, as TFX's ExampleGen driver: the component checks the legacy one, the
    # portable launcher constructs it with an MLMD connection and calls `run`.
    base_driver.BaseDriver.__init__(self, metadata_handle)
    ir_base_driver.BaseDriver.__init__(self, metadata_handle)

  def run(self, execution_info) -> driver_output_pb2.DriverOutput:
    result = driver_output_pb2.DriverOutput()
    for key, value in resolve_exec_properties(execution_info.exec_properties).items():
      if value is not None:
        data_types_utils.set_metadata_value(result.exec_properties[key], value)
    return result
