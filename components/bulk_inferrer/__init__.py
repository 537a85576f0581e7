"""GnnBulkInferrer: predictions and root embeddings of a pushed model for every node of the
target set, a split or an id list (TFX BulkInferrer's role). `bulk_inference` holds the Beam
pipeline and the plain functions, `component`/`executor` the TFX glue."""
