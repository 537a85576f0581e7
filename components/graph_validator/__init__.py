"""GraphValidator: statistics and anomalies of a `Graph` artifact (logic in `validation`)."""
