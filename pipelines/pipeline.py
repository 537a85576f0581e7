"""`create_pipeline(config)`: the one DAG that the local and the Kubeflow runners both run.

GraphIngest -> GraphValidator -> SubgraphSampler -> GnnTrainer -> GnnEvaluator -> Pusher ->
GnnBulkInferrer (root-node models: every target node scored), with a Resolver that finds the
latest blessed model as the evaluator's baseline and one that finds its graph's statistics as
the validator's drift baseline (local runs); after the
evaluator, Attribution (integrated gradients), and last RunReport (one HTML page per run).
"""
from __future__ import annotations

import os

from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2
from tfx.types import channel, standard_artifacts

from tfx_gnn.components import lineage, types
from tfx_gnn.components.attribution.component import Attribution
from tfx_gnn.components.bulk_inferrer.component import GnnBulkInferrer
from tfx_gnn.components.gnn_evaluator.component import GnnEvaluator
from tfx_gnn.components.gnn_trainer.component import GnnTrainer
from tfx_gnn.components.gnn_tuner.component import GnnTuner
from tfx_gnn.components.graph_ingest.component import GraphIngest
from tfx_gnn.components.graph_validator.component import GraphValidator
from tfx_gnn.components.pusher.component import Pusher
from tfx_gnn.components.run_report.component import RunReport
from tfx_gnn.components.subgraph_sampler.component import SubgraphSampler
from tfx_gnn.pipelines import resolvers
from tfx_gnn.pipelines.config import Config

RESOLVER_ID = "latest_blessed_model_resolver"
STATISTICS_RESOLVER_ID = "latest_blessed_graph_statistics_resolver"


def create_components(config: Config, base: str, kubeflow: bool = False) -> list:
  ingest = GraphIngest(data_config=config.data,
                       memory_limit_gb=config.pipeline.memory_limit_gb)
  components = [ingest]
  baseline_statistics = None
  if not kubeflow:
    # The drift baseline: the statistics of the latest blessed model's graph. Kubeflow compiles
    # only TFX's built-in resolver strategies, so there the validator has no baseline and
    # checks each graph on its own (see resolvers.py).
    statistics_resolver = resolver.Resolver(
        strategy_class=resolvers.LatestBlessedGraphStatisticsStrategy,
        graph=ingest.outputs["graph"],
        statistics=channel.Channel(type=types.GraphStatistics),
        model=channel.Channel(type=standard_artifacts.Model),
        model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
    ).with_id(STATISTICS_RESOLVER_ID)
    baseline_statistics = statistics_resolver.outputs["statistics"]
    components.append(statistics_resolver)
  validator = GraphValidator(graph=ingest.outputs["graph"],
                             validation_config=config.validation,
                             baseline_statistics=baseline_statistics)
  tuner = None
  if config.tuner is not None:  # its best settings reach the sampler and the trainer
    tuner = GnnTuner(graph=ingest.outputs["graph"], anomalies=validator.outputs["anomalies"],
                     tuner_config=config.tuner, model_config=config.model,
                     trainer_config=config.trainer, task_config=config.task,
                     sampling_config=config.sampling,
                     memory_limit_gb=config.pipeline.memory_limit_gb,
                     tracking_uri=config.tracking_uri, experiment=config.experiment)
  hyperparameters = tuner.outputs["best_hyperparameters"] if tuner else None
  sampler = SubgraphSampler(graph=ingest.outputs["graph"],
                            anomalies=validator.outputs["anomalies"],
                            sampling_config=config.sampling,
                            memory_limit_gb=config.pipeline.memory_limit_gb,
                            task_config=config.task, hyperparameters=hyperparameters)
  # No integrated-gradients export that no Attribution reads.
  trainer_cfg = (config.trainer if config.runs_attribution else
                 config.trainer.model_copy(update={"integrated_gradients": None}))
  trainer = GnnTrainer(examples=sampler.outputs["examples"], graph=ingest.outputs["graph"],
                       model_config=config.model,
                       trainer_config=trainer_cfg,
                       task_config=config.task,
                       tasks_config=config.tasks if config.multi_task else None,
                       sampling_config=config.sampling,
                       memory_limit_gb=config.pipeline.memory_limit_gb,
                       tracking_uri=config.tracking_uri, experiment=config.experiment,
                       hyperparameters=hyperparameters)
  baseline = resolver.Resolver(
      strategy_class=latest_blessed_model_strategy.LatestBlessedModelStrategy,
      model=channel.Channel(type=standard_artifacts.Model),
      model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
  ).with_id(RESOLVER_ID)
  evaluator = GnnEvaluator(model=trainer.outputs["model"],
                           baseline_model=baseline.outputs["model"],
                           examples=sampler.outputs["examples"], graph=ingest.outputs["graph"],
                           evaluation_config=config.evaluation,
                           kubeflow=kubeflow)
  pusher = Pusher(
      model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
      push_destination=pusher_pb2.PushDestination(
          filesystem=pusher_pb2.PushDestination.Filesystem(
              base_directory=config.serving_dir_under(base))),
      custom_config={"mlflow_tracking_uri": config.tracking_uri,
                     "registered_model_name": config.pipeline.name},
      # What serving by node id needs: the sampling spec (on the examples) and the graph.
      examples=sampler.outputs["examples"] if config.scores_node_ids else None,
      graph=ingest.outputs["graph"] if config.scores_node_ids else None)
  components += [validator] + ([tuner] if tuner else []) + [
      sampler, trainer, baseline, evaluator, pusher]
  if config.scores_node_ids and config.bulk_inference.enabled:
    components.append(GnnBulkInferrer(
        pushed_model=pusher.outputs["pushed_model"], graph=ingest.outputs["graph"],
        inference_config=config.bulk_inference.model_dump_json(),
        tracking_uri=config.tracking_uri))
  attribution = None
  if config.runs_attribution:
    attribution = Attribution(
        model=trainer.outputs["model"], examples=sampler.outputs["examples"],
        graph=ingest.outputs["graph"], attribution_config=config.attribution,
        integrated_gradients_config=config.trainer.integrated_gradients,
        tracking_uri=config.tracking_uri)
    # After the evaluator: attribution explains the model the evaluator judged.
    attribution.add_upstream_node(evaluator)
    components.append(attribution)
  if config.report.enabled:
    components.append(RunReport(
        graph=ingest.outputs["graph"], statistics=validator.outputs["statistics"],
        anomalies=validator.outputs["anomalies"], model=trainer.outputs["model"],
        evaluation=evaluator.outputs["evaluation"], blessing=evaluator.outputs["blessing"],
        attributions=attribution.outputs["attributions"] if attribution else None,
        pushed_model=pusher.outputs["pushed_model"], pipeline_name=config.pipeline.name,
        # Local runs read the lineage from this file; on Kubeflow it does not exist.
        metadata_path=config.metadata_path))
  return components


def create_pipeline(config: Config, base: str | None = None,
                    kubeflow: bool = False) -> tfx_pipeline.Pipeline:
  """The pipeline. Artifacts go to `<base>/pipeline` and pushed models to
  `<base>/<push.destination>`; `base` defaults to `pipeline.root` (Kubeflow: its
  `kubeflow.pipeline_root`, e.g. gs://bucket/tfx-gnn). `kubeflow`: for Kubeflow's container
  entrypoint (the evaluator's executor is then a TFX Evaluator's, see GnnEvaluator)."""
  base = base or config.root
  return tfx_pipeline.Pipeline(
      pipeline_name=config.pipeline.name,
      pipeline_root=os.path.join(base, "pipeline"),
      components=create_components(config, base, kubeflow),
      enable_cache=config.pipeline.enable_cache,
      # SQLite or PostgreSQL; never a password (libpq reads PGPASSWORD when connecting).
      metadata_connection_config=lineage.connection_config(config.metadata_path,
                                                           readonly=False),
      beam_pipeline_args=list(config.pipeline.beam_pipeline_args),
  )
