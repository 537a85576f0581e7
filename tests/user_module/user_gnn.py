"""A user model for GnnTrainer's `module_file` (model template `custom`), as the tests use it:
rounds of plain `tfgnn.keras.layers` (SimpleConv of a Dense message, mean-pooled, into a
concatenating next state), named `user_round_<i>` so that the exported model shows where it
came from."""
import tensorflow as tf
import tensorflow_gnn as tfgnn

ROUND_NAME = "user_round"


def model_fn(graph_tensor_spec, *, readout_node_sets, model_config):
  """The model body on the initial states (see GnnTrainer): GraphTensor in and out."""
  inputs = graph = tf.keras.layers.Input(type_spec=graph_tensor_spec)
  node_sets = [n for n in graph_tensor_spec.node_sets_spec if not tfgnn.get_aux_type_prefix(n)]
  for i in range(model_config.num_rounds):
    last = i == model_config.num_rounds - 1
    receivers = readout_node_sets if last and readout_node_sets else node_sets
    updates = {}
    for receiver in receivers:
      # Messages flow to the edges' SOURCE: the sampler's edges point away from the root.
      convs = {name: tfgnn.keras.layers.SimpleConv(
                   tf.keras.layers.Dense(model_config.units, "relu"), "mean",
                   receiver_tag=tfgnn.SOURCE)
               for name, spec in graph_tensor_spec.edge_sets_spec.items()
               if not tfgnn.get_aux_type_prefix(name)
               and spec.adjacency_spec.source_name == receiver}
      if convs:
        updates[receiver] = tfgnn.keras.layers.NodeSetUpdate(
            convs, tfgnn.keras.layers.NextStateFromConcat(
                tf.keras.layers.Dense(model_config.units, "relu")))
    graph = tfgnn.keras.layers.GraphUpdate(node_sets=updates, name=f"{ROUND_NAME}_{i}")(graph)
  return tf.keras.Model(inputs, graph, name="user_gnn")
