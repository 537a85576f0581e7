"""tfx-gnn's TFX components: GraphIngest, GraphValidator, SubgraphSampler, GnnTrainer,
GnnEvaluator and Pusher. Each lives in its own package; its logic is plain functions."""
import os

# TF-GNN needs Keras 2; this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
