"""Secrets at rest: tokens, provider credentials and their encryption."""
