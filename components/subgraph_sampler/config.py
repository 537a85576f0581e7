"""SubgraphSampler's config: the run config's `sampling` section."""
from __future__ import annotations

from typing import Literal, Optional

import pydantic

from tfx_gnn.components.config_base import Strict


class SamplingConfig(Strict):
  """Subgraphs rooted at each seed: `hops` rounds of uniform sampling without replacement,
  from each reached node set along each of its outgoing edge sets named in `fanouts`."""
  # null (not given): from the graph schema, so that the labelled node set is reached again
  # through every node set the fanouts lead to (subgraph_sampler/relation_paths.py; at least
  # 2; docs/sampling.md).
  hops: Optional[int] = pydantic.Field(None, ge=1, le=5)
  # Required (or a SamplingSpec instead) for node and link tasks; graph-level tasks take whole
  # graphs and sample nothing.
  fanouts: Optional[dict[str, int]] = None
  # Instead of hops and fanouts: a tensorflow_gnn SamplingSpec in text format (a file, e.g.
  # TF-GNN's examples/mag/sampling_spec.pbtxt, whose text is read when the config loads, so the
  # compiled pipeline carries it; or the text itself). Its seed op must start from the
  # labelled node set; uniform sampling ops only for the fast engine; node tasks only.
  spec_file: Optional[str] = None
  spec_text: Optional[str] = None
  # `fast`: the project's engine (numpy CSR, reproducible from `seed`), run in Beam DoFns;
  # `tfgnn_beam`: TF-GNN's Beam sampler (unseeded).
  engine: Literal["fast", "tfgnn_beam"] = "fast"
  seed: int = 0  # the fast engine's subgraphs are a function of (seed, split, seed node id)
  batch_size: int = pydantic.Field(256, gt=0)  # seeds per Beam element (fast engine)
  # `batch`: the SubgraphSampler writes every split's subgraphs once and the trainer reads
  # them; `dynamic`: the sampler writes only eval and test (fixed, for validation, evaluation
  # and attribution) and the trainer samples fresh train subgraphs in memory every epoch from
  # the Graph artifact, with the fast engine (salted with the epoch).
  mode: Literal["batch", "dynamic"] = "batch"

  @pydantic.model_validator(mode="after")
  def _dynamic_needs_fast(self):
    if self.mode == "dynamic" and self.engine != "fast":
      raise ValueError(f"mode 'dynamic' samples in the trainer with the fast engine; "
                       f"engine {self.engine!r} is for mode 'batch' only")
    return self

  @pydantic.field_validator("fanouts")
  @classmethod
  def _positive(cls, fanouts):
    for name, value in (fanouts or {}).items():
      if value <= 0:
        raise ValueError(f"fanout of edge set {name!r} must be > 0, got {value}")
    return fanouts

  @pydantic.model_validator(mode="after")
  def _one_spec(self):
    if self.fanouts is not None and (self.spec_file or self.spec_text):
      raise ValueError("give either `fanouts` (with `hops`) or a SamplingSpec "
                       "(`spec_file` / `spec_text`), not both")
    if self.spec_file and self.spec_text is None:
      try:
        with open(self.spec_file) as f:
          text = f.read()
      except OSError as e:
        raise ValueError(f"spec_file {self.spec_file}: cannot read it ({e.strerror})") from None
      object.__setattr__(self, "spec_text", text)  # frozen model: set once, while validating
    return self

