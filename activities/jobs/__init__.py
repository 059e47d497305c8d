"""Jobs: the job read model (rows, events, logs) and training configs."""
