"""Secrets: where they are read from (the providers' chain), tokens, provider credentials and their
encryption at rest."""
