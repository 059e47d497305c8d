"""OpenID Connect login (authorization code flow + PKCE S256) against a configured provider.

Pure service: no web framework, no database. ``begin_login`` returns a ``PendingLogin`` that the
caller stores (single-use, short expiry) and hands back to ``complete_login`` with the callback's
query parameters. Discovery documents and JWKS are cached per issuer / URI for a few minutes.
ID tokens are checked with joserfc (signature against the provider's JWKS, iss, aud, azp, nonce,
exp/iat); claims are the ID token's merged with userinfo. Groups/roles (dotted claim paths) map to
levels through ``role_mapping`` and ``level_mapping``; nothing is mapped implicitly by name.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import ClaimError, JoseError
from joserfc.jwk import KeySet
from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, SecretStr

from activities.identity.external_identity import (
    LEVELS, ExternalAuthError, ExternalIdentity, InvalidCredentials, NotMapped, ProviderMisconfigured,
    ProviderUnavailable)

log = logging.getLogger(__name__)
CACHE_TTL = 300.0  # seconds a discovery document / JWKS is reused
LEEWAY = 60  # seconds of clock skew allowed on exp / iat
ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_PROTECTED = {"iss", "sub", "aud", "azp", "nonce", "exp", "iat", "nbf", "auth_time", "at_hash", "c_hash", "sid"}
_cache: dict[str, tuple[float, Any]] = {}


class RedirectNotAllowed(ExternalAuthError):
    status_code = 400


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError(f"must be an absolute http(s) URL without a fragment, got {value!r}")
    return value


def _issuer(value: str) -> str:
    if urlsplit(_http_url(value)).query:
        raise ValueError("an issuer URL has no query string")
    return value


def _dotted(value: str) -> str:
    if not value or any(not seg.strip() for seg in value.split(".")):
        raise ValueError(f"claim path {value!r} must be dotted names like 'realm_access.roles'")
    return value


def _level(value: str) -> str:
    if value not in LEVELS:
        raise ValueError(f"unknown level {value!r}; expected one of {', '.join(LEVELS)}")
    return value


def _scopes(value: list[str]) -> list[str]:
    if any(not s or any(c.isspace() for c in s) for s in value):
        raise ValueError("each scope must be a non-empty word without spaces")
    if "openid" not in value:
        raise ValueError("scopes must include 'openid' (without it there is no ID token)")
    return list(dict.fromkeys(value))


HttpUrl = Annotated[str, AfterValidator(_http_url)]
ClaimPath = Annotated[str, AfterValidator(_dotted)]
Level = Annotated[str, AfterValidator(_level)]


class RoleMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    claim: ClaimPath = "groups"
    admin_groups: list[str] = Field(default_factory=list)
    lead_groups: list[str] = Field(default_factory=list)
    researcher_groups: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("researcher_groups", "user_groups"))
    viewer_groups: list[str] = Field(default_factory=list)


class OidcConfig(BaseModel):
    """One OIDC provider's settings; ``client_secret`` is a SecretStr (use ``.get_secret_value()``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    issuer: Annotated[str, AfterValidator(_issuer)] = Field(validation_alias=AliasChoices("issuer", "issuer_url"))
    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(min_length=1)
    scopes: Annotated[list[str], AfterValidator(_scopes)] = Field(
        default_factory=lambda: ["openid", "email", "profile"])
    roles_claim: ClaimPath | None = None
    role_mapping: RoleMapping | None = None
    level_mapping: dict[str, list[Level]] | None = None
    default_level: Level | None = None
    username_claim: str = Field("preferred_username", min_length=1)
    allowed_redirect_uris: list[HttpUrl] = Field(default_factory=list)


class PendingLogin(BaseModel):
    """What the caller stores between ``begin_login`` and ``complete_login`` (secret: never log it)."""

    model_config = ConfigDict(frozen=True)
    authorization_url: str
    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    provider: str


def clear_cache() -> None:
    """Forget cached discovery documents and JWKS (tests, or after reconfiguring a provider)."""
    _cache.clear()


async def _get_json(http: httpx.AsyncClient, url: str, what: str, **kw: Any) -> Any:
    try:
        resp = await http.get(url, headers={"Accept": "application/json", **kw.pop("headers", {})}, **kw)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"cannot reach the identity provider for its {what} ({url}): "
                                  f"{type(exc).__name__}: {exc}") from exc
    if resp.status_code != 200:
        error = ProviderUnavailable if resp.status_code >= 500 else ProviderMisconfigured
        raise error(f"the identity provider's {what} ({url}) returned HTTP {resp.status_code}")
    try:
        return resp.json()
    except ValueError as exc:
        raise ProviderMisconfigured(f"the identity provider's {what} ({url}) is not JSON") from exc


async def discover(config: OidcConfig, http: httpx.AsyncClient, *, use_cache: bool = True) -> dict:
    """The provider's validated discovery document (cached ``CACHE_TTL`` seconds per issuer)."""
    key = "discovery:" + config.issuer
    hit = _cache.get(key)
    if use_cache and hit and hit[0] > time.monotonic():
        return hit[1]
    url = config.issuer.rstrip("/") + "/.well-known/openid-configuration"
    doc = await _get_json(http, url, "discovery document")
    if not isinstance(doc, dict):
        raise ProviderMisconfigured(f"discovery document at {url} is not a JSON object")
    if doc.get("issuer") != config.issuer:
        raise ProviderMisconfigured(f"issuer mismatch: configured {config.issuer!r} but the discovery "
                                    f"document says {doc.get('issuer')!r}; they must be identical")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        try:
            _http_url(doc.get(name) or "")
        except ValueError as exc:
            raise ProviderMisconfigured(f"discovery document: {name} {exc}") from None
    methods = doc.get("code_challenge_methods_supported")
    if methods is not None and "S256" not in methods:
        raise ProviderMisconfigured("the provider does not support PKCE S256 (code_challenge_methods_supported)")
    _cache[key] = (time.monotonic() + CACHE_TTL, doc)
    return doc


async def _jwks(http: httpx.AsyncClient, uri: str, refresh: bool = False) -> KeySet:
    hit = _cache.get("jwks:" + uri)
    if not refresh and hit and hit[0] > time.monotonic():
        return hit[1]
    try:
        keys = KeySet.import_key_set(await _get_json(http, uri, "JWKS"))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ProviderMisconfigured(f"the provider's JWKS ({uri}) is not a usable key set: {exc}") from exc
    _cache["jwks:" + uri] = (time.monotonic() + CACHE_TTL, keys)
    return keys


async def begin_login(config: OidcConfig, provider_name: str, redirect_uri: str,
                      http: httpx.AsyncClient) -> PendingLogin:
    """Start a login: fresh state/nonce/PKCE verifier and the provider's authorization URL."""
    if redirect_uri not in config.allowed_redirect_uris:
        raise RedirectNotAllowed(f"redirect_uri {redirect_uri!r} is not in this provider's allowed_redirect_uris")
    meta = await discover(config, http)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
    url = prepare_grant_uri(
        meta["authorization_endpoint"], client_id=config.client_id, response_type="code",
        redirect_uri=redirect_uri, scope=" ".join(config.scopes), state=state, nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")
    return PendingLogin(authorization_url=url, state=state, nonce=nonce, code_verifier=verifier,
                        redirect_uri=redirect_uri, provider=provider_name)


async def _exchange_code(config: OidcConfig, meta: dict, pending: PendingLogin, code: str,
                         http: httpx.AsyncClient) -> dict:
    """The token request (RFC 6749 4.1.3 with the PKCE verifier), sent through the caller's client so
    that its proxy, CA bundle, timeout and correlation id apply."""
    supported = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    method = "client_secret_post" if "client_secret_basic" not in supported and \
        "client_secret_post" in supported else "client_secret_basic"
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier}
    secret = config.client_secret.get_secret_value()
    auth: httpx.Auth | None = None
    if method == "client_secret_post":
        form.update(client_id=config.client_id, client_secret=secret)
    else:
        auth = httpx.BasicAuth(config.client_id, secret)
    try:
        resp = await http.post(meta["token_endpoint"], data=form, auth=auth, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"token request failed: {type(exc).__name__}: {exc}") from exc
    try:
        token = resp.json()
    except ValueError:
        token = None
    if resp.status_code >= 500 or (not isinstance(token, dict) and resp.status_code >= 400):
        raise ProviderUnavailable(f"token request failed: HTTP {resp.status_code}")
    if not isinstance(token, dict):
        raise ProviderMisconfigured("unusable token response: not a JSON object")
    if "error" in token:
        error, description = token.get("error"), token.get("error_description")
        detail = f"{error}: {description}" if description else str(error)
        if error in ("invalid_client", "unauthorized_client"):
            raise ProviderMisconfigured(f"the provider rejected the client credentials ({detail})")
        raise InvalidCredentials(f"the provider refused the authorization code ({detail})")
    return token


async def _verify_id_token(config: OidcConfig, meta: dict, id_token: str, nonce: str,
                           http: httpx.AsyncClient) -> dict:
    algs = [a for a in meta.get("id_token_signing_alg_values_supported") or ["RS256"] if a in ASYMMETRIC_ALGS]
    token = None
    for refresh in (False, True):  # refetch the JWKS once: the provider may have rotated its keys
        try:
            token = jwt.decode(id_token, await _jwks(http, meta["jwks_uri"], refresh), algorithms=algs or ["RS256"])
            break
        except JoseError as exc:
            if refresh:
                raise InvalidCredentials(f"ID token signature is not valid ({exc.error})") from exc
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY, iss={"essential": True, "value": config.issuer},
        aud={"essential": True, "value": config.client_id}, nonce={"essential": True, "value": nonce},
        sub={"essential": True}, exp={"essential": True}, iat={"essential": True})
    try:
        registry.validate(token.claims)
    except ClaimError as exc:
        raise InvalidCredentials(f"ID token rejected: {exc.description or exc.error}") from exc
    if "azp" in token.claims and token.claims["azp"] != config.client_id:
        raise InvalidCredentials("ID token rejected: 'azp' is not this client")
    return dict(token.claims)


def claim_at(claims: dict, path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``); a top-level key containing dots wins."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for seg in path.split("."):
        value = value.get(seg) if isinstance(value, dict) else None
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def map_levels(config: OidcConfig, claims: dict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(groups and roles as named by the provider, mapped levels in ``LEVELS`` order)."""
    rm = config.role_mapping or RoleMapping()
    names = _strings(claim_at(claims, rm.claim))
    if config.roles_claim:
        names += _strings(claim_at(claims, config.roles_claim))
    groups = tuple(dict.fromkeys(names))
    by_list = {"admin": rm.admin_groups, "lead": rm.lead_groups,
               "researcher": rm.researcher_groups, "viewer": rm.viewer_groups}
    found = {lvl for lvl, members in by_list.items() if set(members) & set(groups)}
    for g in groups:
        found.update((config.level_mapping or {}).get(g, []))
    return groups, tuple(lvl for lvl in LEVELS if lvl in found)


async def complete_login(config: OidcConfig, pending: PendingLogin, callback_params: dict,
                         http: httpx.AsyncClient) -> ExternalIdentity:
    """Finish a login from the redirect's query parameters; raises an ``ExternalAuthError`` on refusal."""
    params = {k: v for k, v in dict(callback_params).items() if isinstance(v, str)}
    if not secrets.compare_digest(params.get("state", "").encode(), pending.state.encode()):
        raise InvalidCredentials("Invalid OAuth state")
    meta = await discover(config, http)
    iss_required = bool(meta.get("authorization_response_iss_parameter_supported"))  # RFC 9207 mix-up defence
    if params.get("iss", None if iss_required else config.issuer) != config.issuer:
        raise InvalidCredentials("the authorization response does not come from this provider's issuer")
    if "error" in params:
        desc = params.get("error_description", "")[:200]
        raise InvalidCredentials(f"the identity provider refused the login: {params['error']}"
                                 + (f" ({desc})" if desc else ""))
    if not params.get("code"):
        raise InvalidCredentials("the authorization response has no code")
    if pending.redirect_uri not in config.allowed_redirect_uris:
        raise RedirectNotAllowed(f"redirect_uri {pending.redirect_uri!r} is no longer allowed")
    token = await _exchange_code(config, meta, pending, params["code"], http)
    if not isinstance(token.get("id_token"), str):
        raise ProviderMisconfigured("the token response has no id_token")
    claims = await _verify_id_token(config, meta, token["id_token"], pending.nonce, http)
    if meta.get("userinfo_endpoint") and token.get("access_token"):
        info = await _get_json(http, meta["userinfo_endpoint"], "userinfo",
                               headers={"Authorization": f"Bearer {token['access_token']}"})
        if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
            raise InvalidCredentials("userinfo does not belong to the ID token's subject")
        claims.update({k: v for k, v in info.items() if k not in _PROTECTED})
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    if claims.get("email_verified") is False:
        email = None  # an unverified address must not identify anyone
    preferred = email if config.username_claim == "email" else claim_at(claims, config.username_claim)
    username = next(v for v in (preferred, email, claims["sub"])
                    if isinstance(v, str) and v)
    groups, levels = map_levels(config, claims)
    if not levels:
        if config.default_level is None:
            log.warning("oidc %s: %s (%s) has no mapped group/role %s", pending.provider, username,
                        claims["sub"], list(groups))
            raise NotMapped("none of your groups or roles is mapped to a level in this application")
        levels = (config.default_level,)
    name = claims.get("name") or " ".join(
        str(claims[k]) for k in ("given_name", "family_name") if claims.get(k)) or None
    log.info("oidc %s: %s (%s) logged in with levels %s", pending.provider, username, claims["sub"], levels)
    return ExternalIdentity(provider=pending.provider, subject=claims["sub"], username=username, email=email,
                            display_name=name if isinstance(name, str) else None, groups=groups, levels=levels)


async def test_provider(config: OidcConfig, http: httpx.AsyncClient) -> dict:
    """Fresh discovery + JWKS fetch; a summary for an admin "test connection" button."""
    meta = await discover(config, http, use_cache=False)
    keys = await _jwks(http, meta["jwks_uri"], refresh=True)
    supported = meta.get("scopes_supported")
    return {"ok": True, "issuer": meta["issuer"], "authorization_endpoint": meta["authorization_endpoint"],
            "token_endpoint": meta["token_endpoint"], "userinfo_endpoint": meta.get("userinfo_endpoint"),
            "jwks_keys": len(keys.keys), "pkce_s256": "S256" in (meta.get("code_challenge_methods_supported") or []),
            "unsupported_scopes": [s for s in config.scopes if supported is not None and s not in supported]}


test_provider.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported by name
