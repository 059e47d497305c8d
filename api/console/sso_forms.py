"""The console's sign-in provider forms (OIDC and LDAP): form fields ↔ the REST bodies
(``ProviderCreate`` / ``ProviderPatch``), used by ``/admin/sso`` and the set-up's first step.

Every field is a string as a form posts it; empty optional fields mean "the default" (on an edit:
remove the stored value). Secrets (``client_secret``, ``bind_password``) are write-only: a form never
gets them back, and an empty secret field on an edit keeps the stored one. Groups map to levels in one
text field, a line ``group = level, level`` each; on an OIDC provider the ``role_mapping`` group lists
of the REST body are shown there too (the same effect) and saved as ``level_mapping``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from activities.db.models_sso import ExternalAuthProvider
from activities.errors import InvalidInput
from activities.identity.external_identity import LEVELS
from activities.identity.sso import provider_secrets
from activities.identity.sso import providers as sso

TYPES = ("oidc", "ldap")
SECRET_FIELDS = provider_secrets.SECRET_KEYS  # ("client_secret", "bind_password"): form fields of the same name
DEFAULT_SCOPES = "openid email profile"
DEFAULT_GROUPS_CLAIM = "groups"
OIDC_TEXT = ("issuer", "client_id", "roles_claim", "username_claim", "default_level")
LDAP_TEXT = ("server", "base_dn", "bind_dn", "user_search_filter", "user_search_base", "ca_cert_path",
             "email_attribute", "name_attribute", "username_attribute")
LDAP_CHECKS = ("use_ssl", "start_tls", "tls_verify")
ROLE_LISTS = {"admin_groups": "admin", "lead_groups": "lead", "researcher_groups": "researcher",
              "viewer_groups": "viewer"}


def callback_url(base_url: str) -> str:
    """Where the console's sign-in page asks an OIDC provider to send the browser back."""
    return base_url.rstrip("/") + "/sign-in/oidc"


def defaults(provider_type: str, callback: str) -> dict[str, str]:
    """The form values of a new provider."""
    if provider_type == "oidc":
        return {"provider_type": "oidc", "enabled": "yes", "scopes": DEFAULT_SCOPES,
                "groups_claim": DEFAULT_GROUPS_CLAIM, "username_claim": "preferred_username",
                "allowed_redirect_uris": callback}
    return {"provider_type": "ldap", "enabled": "yes", "user_search_filter": "(uid={username})",
            "tls_verify": "yes", "timeout_seconds": "10", "email_attribute": "mail", "name_attribute": "cn"}


def without_secrets(form: dict[str, str]) -> dict[str, str]:
    """A posted form to fill in again: everything but the secrets and the CSRF token."""
    return {k: v for k, v in form.items() if k not in (*SECRET_FIELDS, "csrf")}


# ---- form → REST body ------------------------------------------------------------------------------

def _text(form: dict[str, str], key: str) -> str | None:
    value = form.get(key, "").strip()
    return value or None


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def parse_mapping(text: str) -> dict[str, list[str]]:
    """``group = level, level`` lines (the group may be an LDAP DN: the last ``=`` separates)."""
    mapping: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        group, sep, levels = line.rpartition("=")
        names = [x.strip() for x in levels.split(",") if x.strip()]
        if not sep or not group.strip() or not names:
            raise InvalidInput(f"groups to levels, line {n}: write group = level (levels: {', '.join(LEVELS)})")
        unknown = [x for x in names if x not in LEVELS]
        if unknown:
            raise InvalidInput(f"groups to levels, line {n}: unknown level {unknown[0]!r} "
                               f"(levels: {', '.join(LEVELS)})")
        known = mapping.setdefault(group.strip(), [])
        known.extend(x for x in names if x not in known)
    return mapping


def _timeout(form: dict[str, str]) -> int | None:
    value = _text(form, "timeout_seconds")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput("timeout_seconds: must be a whole number of seconds") from None


def _config(form: dict[str, str], provider_type: str) -> dict[str, Any]:
    """The provider's settings as the form gives them; ``None``: empty (the default)."""
    if provider_type == "oidc":
        config: dict[str, Any] = {key: _text(form, key) for key in OIDC_TEXT}
        config["scopes"] = form.get("scopes", "").replace(",", " ").split() or None
        config["allowed_redirect_uris"] = _lines(form.get("allowed_redirect_uris", "")) or None
        claim = _text(form, "groups_claim")
        config["role_mapping"] = {"claim": claim} if claim and claim != DEFAULT_GROUPS_CLAIM else None
    else:
        config = {key: _text(form, key) for key in LDAP_TEXT}
        config.update({key: form.get(key) == "yes" for key in LDAP_CHECKS})
        config["timeout_seconds"] = _timeout(form)
    for key in SECRET_FIELDS:
        if key in form and form[key] != "":
            config[key] = form[key]
    return config


def create_body(form: dict[str, str]) -> sso.ProviderCreate:
    """The REST create body of a posted form (``ValidationError`` / ``InvalidInput`` on bad input)."""
    provider_type = form.get("provider_type", "")
    if provider_type not in TYPES:
        raise InvalidInput("provider_type: must be 'oidc' or 'ldap'")
    name = form.get("name", "").strip()
    if not re.match(sso.NAME_PATTERN, name):
        raise InvalidInput("name: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    config = {k: v for k, v in _config(form, provider_type).items() if v is not None}
    return sso.ProviderCreate.model_validate({
        "name": name, "provider_type": provider_type, "enabled": form.get("enabled") == "yes",
        "config": config, "level_mapping": parse_mapping(form.get("level_mapping", ""))})


def patch_body(form: dict[str, str], row: ExternalAuthProvider) -> sso.ProviderPatch:
    """The REST PATCH body of a posted edit form: the form's settings replace the stored ones (keys the
    form leaves empty are removed); a secret left empty is not sent, so the stored one stays."""
    config = _config(form, row.provider_type)
    for key in provider_secrets.masked_config(row):
        if key not in config and key not in SECRET_FIELDS:
            config[key] = None  # e.g. the alias issuer_url: the form's issuer replaces it
    return sso.ProviderPatch.model_validate({
        "enabled": form.get("enabled") == "yes", "config": config,
        "level_mapping": parse_mapping(form.get("level_mapping", ""))})


# ---- stored provider → page ------------------------------------------------------------------------

def _model(row: ExternalAuthProvider) -> Any:
    """The validated settings with the secrets masked (never decrypted here); None if unreadable."""
    try:
        return sso.runtime_config(row.provider_type, provider_secrets.masked_config(row), row.level_mapping)
    except (InvalidInput, ValidationError):
        return None


def _mapping(model: Any, row: ExternalAuthProvider) -> dict[str, list[str]]:
    mapping = {g: list(levels) for g, levels in ((model.level_mapping if model else row.level_mapping) or {}).items()}
    role_mapping = getattr(model, "role_mapping", None)
    for field, level in ROLE_LISTS.items():
        for group in getattr(role_mapping, field, None) or []:
            known = mapping.setdefault(group, [])
            if level not in known:
                known.append(level)
    return mapping


def mapping_text(mapping: dict[str, list[str]]) -> str:
    return "\n".join(f"{group} = {', '.join(levels)}" for group, levels in mapping.items())


def form_values(row: ExternalAuthProvider) -> dict[str, str]:
    """The edit form of a stored provider, secrets left out."""
    model = _model(row)
    values = {"name": row.name, "provider_type": row.provider_type, "enabled": "yes" if row.enabled else "",
              "level_mapping": mapping_text(_mapping(model, row))}
    if model is None:  # settings no form field can show: start from the raw ones
        values.update({k: str(v) for k, v in provider_secrets.masked_config(row).items()
                       if k not in SECRET_FIELDS and isinstance(v, (str, int, float))})
        return values
    if row.provider_type == "oidc":
        values.update({key: str(getattr(model, key) or "") for key in OIDC_TEXT})
        values["scopes"] = " ".join(model.scopes)
        values["allowed_redirect_uris"] = "\n".join(model.allowed_redirect_uris)
        values["groups_claim"] = model.role_mapping.claim if model.role_mapping else DEFAULT_GROUPS_CLAIM
    else:
        values.update({key: str(getattr(model, key) or "") for key in LDAP_TEXT})
        values.update({key: "yes" if getattr(model, key) else "" for key in LDAP_CHECKS})
        values["timeout_seconds"] = str(model.timeout_seconds)
    return values


def summary(row: ExternalAuthProvider) -> dict[str, Any]:
    """What the providers list shows of one: key settings, and whether each secret is set."""
    model, stored = _model(row), provider_secrets.stored_keys(row)
    if row.provider_type == "oidc":
        settings = [("Issuer", getattr(model, "issuer", None)), ("Client ID", getattr(model, "client_id", None)),
                    ("Redirect URIs", len(getattr(model, "allowed_redirect_uris", None) or []))]
        secrets = [("Client secret", "client_secret" in stored)]
    else:
        settings = [("Server", getattr(model, "server", None)), ("Base DN", getattr(model, "base_dn", None)),
                    ("Bind DN", getattr(model, "bind_dn", None))]
        secrets = [("Bind password", "bind_password" in stored)]
    mapping = _mapping(model, row)
    return {"name": row.name, "provider_type": row.provider_type, "enabled": row.enabled, "source": row.source,
            "settings": [(label, "" if value is None else str(value)) for label, value in settings],
            "secrets": secrets, "mapped_groups": len(mapping), "readable": model is not None,
            "updated_at": row.updated_at}
