"""GnnEvaluator: test-split metrics of a candidate model and its blessing against a baseline."""
