"""Secrets providers, one module each: ``env``, ``file``, ``aws`` (Secrets Manager), ``vault`` (KV v2).
Each answers ``get(name)`` with the value, or None when it does not hold that secret, and raises
``SecretProviderError`` when it cannot answer; ``check()`` says whether it answers at all."""
