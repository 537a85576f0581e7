"""GraphIngest: node and edge tables (CSV, CSV.gz, Parquet, TFRecord of tf.Example; local, s3://
or gs://), an OGB dataset in OGB's own layout, or an existing unigraph, become a `Graph` artifact
(a unigraph directory with its GraphSchema, seeds and graph_info.json).

The logic is plain functions in `ingest.py` (`ingest`, `tables_to_graph`, `unigraph_to_graph`,
`make_splits`, `read_table`), `tables.py` (reading any table from any store) and `ogb.py`
(`ogb_to_graph`), callable and testable without TFX.
"""
