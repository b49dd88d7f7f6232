"""The evaluation engine: claims executions, calls models concurrently within limits, scores, writes results."""
