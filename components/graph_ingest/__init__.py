"""GraphIngest: node and edge tables (CSV, CSV.gz, Parquet), or an existing unigraph, become a
`Graph` artifact (a unigraph directory with its GraphSchema, seeds and graph_info.json).

The logic is plain functions in `ingest.py` (`ingest`, `tables_to_graph`, `unigraph_to_graph`,
`make_splits`, `read_table`), callable and testable without TFX.
"""
