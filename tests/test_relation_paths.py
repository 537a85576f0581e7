"""The default `sampling.hops`: reach the labelled node set again through every node set."""
import pytest

from tfx_gnn.components.subgraph_sampler import relation_paths

# Authors write papers, papers appear in venues; each relation with its reverse.
AUTHOR_PAPER_VENUE = {
    "writes": ("author", "paper"), "written_by": ("paper", "author"),
    "published_in": ("paper", "venue"), "publishes": ("venue", "paper"),
}


def test_labels_on_authors_reach_the_venues_other_authors_in_4_hops():
  lengths = relation_paths.relation_path_lengths(AUTHOR_PAPER_VENUE, "author")
  # author->paper->author, and author->paper->venue->paper->author
  assert lengths == {"author": 2, "paper": 2, "venue": 4}
  assert relation_paths.hops_for_relation_paths(AUTHOR_PAPER_VENUE, "author") == 4


def test_labels_on_papers_reach_the_venues_other_papers_in_2_hops():
  assert relation_paths.relation_path_lengths(AUTHOR_PAPER_VENUE, "paper") == {
      "paper": 2, "author": 2, "venue": 2}
  assert relation_paths.hops_for_relation_paths(AUTHOR_PAPER_VENUE, "paper") == 2


def test_a_set_without_a_way_back_counts_with_the_hops_that_reach_it():
  edge_sets = {"writes": ("author", "paper"), "written_by": ("paper", "author"),
               "has_subject": ("paper", "subject")}  # no subject -> paper
  lengths = relation_paths.relation_path_lengths(edge_sets, "author")
  assert lengths["subject"] == 2 and lengths["paper"] == 2
  assert relation_paths.hops_for_relation_paths(edge_sets, "author") == 2


def test_mag_shaped_paper_labels_and_institutions_need_4_hops():
  edge_sets = {"cites": ("paper", "paper"), "written": ("paper", "author"),
               "writes": ("author", "paper"), "affiliated_with": ("author", "institution"),
               "employs": ("institution", "author")}
  assert relation_paths.relation_path_lengths(edge_sets, "paper")["institution"] == 4
  assert relation_paths.hops_for_relation_paths(edge_sets, "paper") == 4
  # Only the edge sets that are sampled count: without the institution's, 2.
  del edge_sets["affiliated_with"], edge_sets["employs"]
  assert relation_paths.hops_for_relation_paths(edge_sets, "paper") == 2


def test_homogeneous_graphs_get_the_minimum_and_long_paths_the_maximum():
  assert relation_paths.hops_for_relation_paths({"cites": ("paper", "paper")}, "paper") == 2
  chain = {f"e{i}": (f"s{i}", f"s{i + 1}") for i in range(4)}
  chain.update({f"r{i}": (f"s{i + 1}", f"s{i}") for i in range(4)})
  assert relation_paths.relation_path_lengths(chain, "s0")["s4"] == 8
  assert relation_paths.hops_for_relation_paths(chain, "s0") == relation_paths.MAX_HOPS
  assert relation_paths.hops_for_relation_paths(chain, "s0", max_hops=3) == 3


def test_the_sampling_spec_takes_its_hops_from_the_schema_when_not_given():
  import tensorflow_gnn as tfgnn
  from tfx_gnn.components.subgraph_sampler import sampling
  schema = tfgnn.GraphSchema()
  for name in ("author", "paper", "venue"):
    schema.node_sets[name].description = name
  for name, (source, target) in AUTHOR_PAPER_VENUE.items():
    schema.edge_sets[name].source = source
    schema.edge_sets[name].target = target
  fanouts = {name: 2 for name in AUTHOR_PAPER_VENUE}
  assert relation_paths.hops_for_schema(schema, "author", fanouts) == 4
  assert relation_paths.hops_for_schema(schema, "author", {"writes": 2, "written_by": 2}) == 2

  def depth(spec):
    node_set_of = {spec.seed_op.op_name: 0}
    for op in spec.sampling_ops:
      node_set_of[op.op_name] = 1 + max(node_set_of[i] for i in op.input_op_names)
    return max(node_set_of.values())
  assert depth(sampling.build_sampling_spec(schema, "author", fanouts, None)) == 4
  assert depth(sampling.build_sampling_spec(schema, "author", fanouts, 3)) == 3


def test_hops_is_optional_in_the_config_and_still_bounded():
  import pydantic
  from tfx_gnn.components.subgraph_sampler.config import SamplingConfig
  assert SamplingConfig(fanouts={"cites": 2}).hops is None
  with pytest.raises(pydantic.ValidationError, match="hops"):
    SamplingConfig(fanouts={"cites": 2}, hops=6)
