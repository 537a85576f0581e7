"""Pusher: TFX's Pusher, publishing atomically and registering the model version in MLflow."""
