"""What Temporal sees: the client, and the activity classes the worker host registers."""
