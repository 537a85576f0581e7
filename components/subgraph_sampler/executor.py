"""SubgraphSampler's executor: builds the sampling program, runs it on the TFX Beam pipeline."""
import json
import os

from absl import logging
from google.protobuf import text_format
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils

from tfx_gnn.components import graph_io, hyperparameters, publish
from tfx_gnn.components.subgraph_sampler.config import SamplingConfig

PROGRAM_DIR = "sampling_program"  # the program's TF artifacts; Beam workers read them


@publish.atomic_outputs
class Executor(base_beam_executor.BaseBeamExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    from tfx_gnn.components.subgraph_sampler import sampling
    graph = artifact_utils.get_single_instance(input_dict["graph"])
    examples = artifact_utils.get_single_instance(output_dict["examples"])
    config = SamplingConfig.model_validate_json(exec_properties["sampling_config"])
    if input_dict.get("hyperparameters"):  # the GnnTuner's hops and fanouts
      config = hyperparameters.apply(config, hyperparameters.read_overrides(
          artifact_utils.get_single_instance(input_dict["hyperparameters"]).uri), "sampling")

    seeds = json.loads(exec_properties.get("seeds") or '{"kind": "nodes"}')
    label = graph_io.read_label(graph.uri)
    if label is None and seeds["kind"] != "links":
      raise ValueError(f"graph {graph.uri} has no labelled node set to seed the sampling from")
    schema = graph_io.read_schema(graph.uri)
    spec = None
    if seeds["kind"] == "nodes":
      spec = sampling.spec_from_config(config, schema, label.node_set)

    split_counts = json.loads(graph.get_string_custom_property("split_counts") or "{}")
    splits = [s for s, n in split_counts.items() if n > 0]
    if seeds["kind"] == "links":
      splits = [s for s in graph_io.SPLITS if seeds["edge_split"].get(s)]
    if config.mode == "dynamic":  # the trainer samples train subgraphs itself, every epoch
      splits = [s for s in splits if s != "train"]
    examples.split_names = artifact_utils.encode_split_names(splits)
    outputs = {s: os.path.join(artifact_utils.get_split_uri([examples], s), "subgraphs")
               for s in splits}
    examples.set_string_custom_property("seeds", seeds["kind"])
    if seeds["kind"] == "nodes":
      logging.info("SubgraphSampler: sampling %s subgraphs (%s engine)", ", ".join(
          f"{split_counts[s]:,} {s}" for s in splits), config.engine)
    if seeds["kind"] != "nodes" and config.engine != "fast":
      raise ValueError(f"sampling.engine: {config.engine!r} samples around nodes only; "
                       f"{seeds['kind']} need the fast engine (sampling.engine: fast)")
    if seeds["kind"] == "links":
      from tfx_gnn.components.subgraph_sampler import fast_beam, fast_sampler, links
      fast_sampler.check_graph_fits(graph.uri, schema, exec_properties.get("memory_limit_gb"))
      seeds_dir = os.path.join(examples.uri, links.SEEDS_DIR)
      links.build_specs(schema, seeds["edge_set"], config.fanouts, config.hops)  # checks
      pairs = links.split_links(graph_io.read_graph(graph.uri), seeds["edge_set"],
                                seeds["edge_split"], seeds["negatives_per_positive"],
                                config.seed)
      links.write_link_seeds(seeds_dir, {s: pairs[s] for s in splits})
      subgraph_schema = links.subgraph_schema(schema, seeds["edge_set"], config.fanouts,
                                              config.hops)
      with self._make_beam_pipeline() as pipeline:
        fast_beam.add_link_sampling(pipeline, graph_dir=graph.uri, edge_set=seeds["edge_set"],
                                    fanouts=config.fanouts, hops=config.hops, seed=config.seed,
                                    seeds_dir=seeds_dir, batch_size=config.batch_size,
                                    outputs=outputs)
      for s in splits:
        examples.set_int_custom_property(f"{s}_links", int(pairs[s].label.sum()))
    elif seeds["kind"] == "graphs":
      from tfx_gnn.components.subgraph_sampler import fast_beam, whole_graphs
      subgraph_schema = whole_graphs.GraphCollection.from_graph_dir(graph.uri).subgraph_schema()
      with self._make_beam_pipeline() as pipeline:
        fast_beam.add_whole_graphs(pipeline, graph_dir=graph.uri, batch_size=config.batch_size,
                                   outputs=outputs)
    elif config.engine == "fast":
      from tfx_gnn.components.subgraph_sampler import fast_beam, fast_sampler
      fast_sampler.check_graph_fits(graph.uri, schema, exec_properties.get("memory_limit_gb"))
      subgraph_schema = fast_sampler.subgraph_schema(schema, spec)
      try:
        with self._make_beam_pipeline() as pipeline:
          fast_beam.add_fast_sampling(pipeline, graph_dir=graph.uri, spec=spec,
                                      seed=config.seed, batch_size=config.batch_size,
                                      outputs=outputs)
      finally:
        fast_beam.release_samplers()  # in-process runners: free the graph for the trainer
    else:
      program_dir = os.path.join(examples.uri, PROGRAM_DIR)
      program, layers_mapping, subgraph_schema = sampling.prepare_program(schema, spec,
                                                                          program_dir)
      with self._make_beam_pipeline() as pipeline:
        sampling.add_sampling(pipeline, graph_dir=graph.uri, program=program,
                              layers_mapping=layers_mapping, artifacts_dir=program_dir,
                              outputs=outputs)
    graph_io.write_text(graph_io.subgraph_schema_path(examples.uri),
                        text_format.MessageToString(subgraph_schema))
    examples.set_string_custom_property("file_format", "tfrecord")
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    if spec is not None:
      examples.set_string_custom_property("sampling_spec", text_format.MessageToString(spec))
    examples.set_string_custom_property("sampling_engine", config.engine)
    examples.set_string_custom_property("sampling_mode", config.mode)
    if config.engine == "fast":
      examples.set_int_custom_property("sampling_seed", config.seed)
