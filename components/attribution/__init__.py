"""Attribution: integrated gradients of the trained model over test subgraphs.

`attribution` holds the computation (`attribute`, `summarize`), `report` the artifact's files
and HTML report, `component`/`executor` the TFX glue."""
