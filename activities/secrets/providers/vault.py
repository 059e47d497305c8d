"""HashiCorp Vault, KV version 2 (hvac). A secret ``NAME`` is the field ``value`` of the secret at
``<path_prefix>NAME`` under the mount ``mount`` (``GET /v1/<mount>/data/<path_prefix>NAME``). The
token needs ``read`` on those paths (and the default policy's ``auth/token/lookup-self``, which the
health check calls). Answers are cached for ``cache_ttl_seconds``; a failure is never cached. A CA for
the server is taken from ``VAULT_CACERT``/``VAULT_CAPATH``, as the Vault CLI does.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from activities.secrets.providers.base import SecretProviderError
from activities.secrets.providers.cache import TtlCache

log = logging.getLogger(__name__)

VALUE_FIELD = "value"


class VaultKvProvider:
    name = "vault"

    def __init__(self, url: str, token: str, *, mount: str = "secret", path_prefix: str = "simpletuner/",
                 timeout_seconds: float = 5.0, cache: TtlCache | None = None) -> None:
        self.url, self.mount, self.path_prefix = url.rstrip("/"), mount, path_prefix
        self.timeout = timeout_seconds
        self._token = token
        self._cache = cache or TtlCache(0)
        self._client: Any = None
        self._lock = threading.Lock()

    def _vault(self) -> Any:
        with self._lock:
            if self._client is None:
                import hvac

                self._client = hvac.Client(url=self.url, token=self._token, timeout=self.timeout)
            return self._client

    def _failure(self, secret: str | None, exc: Exception) -> SecretProviderError:
        import hvac.exceptions
        import requests

        log.warning("Vault at %s failed for %s: %s: %s", self.url, secret or "the health check",
                    type(exc).__name__, exc)
        if isinstance(exc, hvac.exceptions.Forbidden):
            reason = "permission denied (403): check the token and its policy"
        elif isinstance(exc, hvac.exceptions.VaultError):
            reason = f"Vault answered {type(exc).__name__}"
        elif isinstance(exc, requests.RequestException):
            reason = f"Vault unreachable ({type(exc).__name__})"
        else:
            reason = f"unexpected answer ({type(exc).__name__})"
        return SecretProviderError(self.name, secret, reason)

    def _read(self, secret: str) -> str | None:
        import hvac.exceptions
        import requests

        path = f"{self.path_prefix}{secret}"
        try:
            answer = self._vault().secrets.kv.v2.read_secret_version(path=path, mount_point=self.mount,
                                                                     raise_on_deleted_version=True)
        except hvac.exceptions.InvalidPath:
            return None  # no such secret, or its latest version is deleted
        except (hvac.exceptions.VaultError, requests.RequestException, ValueError) as exc:
            raise self._failure(secret, exc) from None
        data = ((answer or {}).get("data") or {}).get("data")
        if not isinstance(data, dict):
            raise SecretProviderError(self.name, secret, f"{self.mount}/{path} is not a KV version 2 secret")
        value = data.get(VALUE_FIELD)
        if not isinstance(value, str):
            raise SecretProviderError(self.name, secret, f"{self.mount}/{path} has no text field {VALUE_FIELD!r}")
        return value

    def get(self, secret: str) -> str | None:
        return self._cache.get(secret, lambda: self._read(secret)) or None

    def check(self) -> None:
        import hvac.exceptions
        import requests

        try:
            self._vault().auth.token.lookup_self()
        except (hvac.exceptions.VaultError, requests.RequestException, ValueError) as exc:
            raise self._failure(None, exc) from None

    def where(self) -> str:
        return f"{self.url}, {self.mount}/{self.path_prefix}NAME"
