"""A cloud provider's credential check, shared by ``POST /api/cloud/providers/{provider}/validate`` and the
console's providers page: a real call to the provider with the credential a job of the caller would use
(the caller's own, else the global one), through the provider's own outbound HTTP settings. The answer
names which credential was tried, never its value."""

from __future__ import annotations

import asyncio
from typing import Any

from activities.outbound_http.tls import CaBundleError
from activities.providers import registry
from activities.providers import settings as provider_settings
from activities.providers.base import ProviderCallError, ProviderRefused


async def validate(state: Any, provider: str, user_id: str | None) -> dict[str, Any]:
    """``{provider, valid, credential_source, account, error}``; NotFound for an unknown provider."""
    impl = registry.get(provider)

    def prepare():
        with state.db.session() as session:
            row = provider_settings.config(session, provider)
            try:
                token, source = provider_settings.token(session, provider, user_id, state.settings.secret_resolver)
            except ProviderRefused as exc:
                return row, None, None, exc.detail
            return row, token, source, None

    row, token, source, error = await asyncio.to_thread(prepare)
    answer = {"provider": provider, "valid": False, "credential_source": source, "account": None, "error": error}
    if token is None:
        return answer
    try:
        async with provider_settings.connection(row, state.settings.outbound_http, token) as conn:
            found = await impl.validate(conn)
    except (ProviderCallError, ProviderRefused) as exc:
        return {**answer, "error": exc.detail}
    except CaBundleError as exc:  # the bundle was readable when it was set, and is not any more
        return {**answer, "error": f"CA bundle: {exc}"}
    return {**answer, "valid": True, "account": found.get("account")}
