"""RunReport: one self-contained HTML report per pipeline run (`report`: the plain functions;
`component`/`executor`: the TFX glue)."""
