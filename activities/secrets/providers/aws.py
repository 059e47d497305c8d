"""AWS Secrets Manager (boto3). A secret ``NAME`` is the secret ``<prefix>NAME`` whose text is the
value, or, with ``secret_id``, the key ``NAME`` of that one secret's JSON object. Answers are cached
for ``cache_ttl_seconds`` (Secrets Manager charges per call); a failure is never cached.

Credentials come from the standard AWS chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance or task roles): they cannot come from the secrets
providers themselves. The IAM policy needs ``secretsmanager:GetSecretValue`` on the secrets, and for
the health check ``secretsmanager:ListSecrets`` (prefix layout) or ``DescribeSecret`` (``secret_id``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from activities.secrets.providers.base import SecretProviderError
from activities.secrets.providers.cache import TtlCache

log = logging.getLogger(__name__)

_NOT_FOUND = "ResourceNotFoundException"
_CREDENTIAL_VARS = {"aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
                    "aws_session_token": "AWS_SESSION_TOKEN", "profile_name": "AWS_PROFILE"}


class AwsSecretsManagerProvider:
    name = "aws"

    def __init__(self, region: str, *, prefix: str | None = None, secret_id: str | None = None,
                 endpoint_url: str | None = None, timeout_seconds: float = 5.0, cache: TtlCache | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        if bool(prefix) == bool(secret_id):
            raise ValueError("exactly one of prefix and secret_id")
        self.region, self.prefix, self.secret_id, self.endpoint_url = region, prefix, secret_id, endpoint_url
        self.timeout = timeout_seconds
        self._cache = cache or TtlCache(0)
        self._credentials = {arg: (env or {}).get(var) or None for arg, var in _CREDENTIAL_VARS.items()}
        self._client: Any = None
        self._lock = threading.Lock()

    def _sm(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(region_name=self.region, **self._credentials)
                config = Config(connect_timeout=self.timeout, read_timeout=self.timeout,
                                retries={"max_attempts": 2, "mode": "standard"})
                self._client = session.client("secretsmanager", endpoint_url=self.endpoint_url, config=config)
            return self._client

    def _call(self, secret: str | None, method: str, **kwargs: Any) -> dict[str, Any] | None:
        """The API's answer; None when the secret does not exist; SecretProviderError on any failure."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._sm(), method)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code == _NOT_FOUND and method == "get_secret_value":
                return None
            log.warning("AWS Secrets Manager %s failed for %s: %s", method, secret or "the health check", exc)
            raise SecretProviderError(self.name, secret, f"AWS answered {code}") from None
        except BotoCoreError as exc:
            log.warning("AWS Secrets Manager %s failed for %s: %s", method, secret or "the health check", exc)
            raise SecretProviderError(self.name, secret, f"AWS unreachable or unusable ({type(exc).__name__})") from None

    def _text(self, aws_id: str, secret: str) -> str | None:
        """The text of the AWS secret ``aws_id`` (cached); None when it does not exist."""
        def load() -> str | None:
            answer = self._call(secret, "get_secret_value", SecretId=aws_id)
            if answer is None:
                return None
            if "SecretString" not in answer:
                raise SecretProviderError(self.name, secret, f"AWS secret {aws_id} holds binary data, not text")
            return answer["SecretString"]
        return self._cache.get(aws_id, load)

    def get(self, secret: str) -> str | None:
        if self.prefix:
            return self._text(self.prefix + secret, secret) or None
        text = self._text(self.secret_id or "", secret)
        if text is None:
            raise SecretProviderError(self.name, secret, f"AWS secret {self.secret_id} (secrets.aws.secret_id) "
                                                         "does not exist")
        try:
            mapping = json.loads(text)
        except json.JSONDecodeError:
            mapping = None
        if not isinstance(mapping, dict):
            raise SecretProviderError(self.name, secret, f"AWS secret {self.secret_id} is not a JSON object of "
                                                         "name to value")
        value = mapping.get(secret)
        if value is not None and not isinstance(value, str):
            raise SecretProviderError(self.name, secret, f"the value of {secret} in {self.secret_id} is not a string")
        return value or None

    def check(self) -> None:
        if self.secret_id:
            self._call(None, "describe_secret", SecretId=self.secret_id)
        else:
            self._call(None, "list_secrets", MaxResults=1, Filters=[{"Key": "name", "Values": [self.prefix]}])

    def where(self) -> str:
        layout = f"secret {self.secret_id}" if self.secret_id else f"secrets named {self.prefix}NAME"
        return f"{self.endpoint_url or 'AWS'} ({self.region}), {layout}"
