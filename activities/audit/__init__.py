"""The audit trail and the job event stream, written in the caller's transaction."""
