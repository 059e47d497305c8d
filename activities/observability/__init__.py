"""What operators watch: the correlation id, structured log context, metrics."""
