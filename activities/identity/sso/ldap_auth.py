"""LDAP / Active Directory login: service bind, find the user, bind as the user, map groups to levels.

``authenticate`` is synchronous (run it in a thread) and raises only the ``ExternalAuthError`` types of
``external_identity``. Usernames are filter-escaped; empty passwords are refused before any bind (LDAP
treats an empty simple bind as an unauthenticated *success*); 0 or several matching entries fail exactly
like a wrong password. Passwords never appear in messages or logs.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPCommunicationError, LDAPException, LDAPStartTLSError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from activities.identity.external_identity import (
    LEVELS, ExternalAuthError, ExternalIdentity, InvalidCredentials, NotMapped, ProviderMisconfigured,
    ProviderUnavailable)

log = logging.getLogger(__name__)
GENERIC = "invalid username or password"
_TRANSIENT = {3, 11, 51, 52, 80}  # timeLimitExceeded, adminLimitExceeded, busy, unavailable, other


class LdapConfig(BaseModel):
    """The ``config`` of an ``ldap`` provider. An ``ldaps://`` server implies ``use_ssl``."""

    model_config = ConfigDict(extra="forbid")

    server: str
    base_dn: str
    bind_dn: str
    bind_password: str = Field(min_length=1, repr=False)
    user_search_filter: str = "(uid={username})"
    user_search_base: str | None = None  # default: base_dn
    use_ssl: bool = False
    start_tls: bool = False
    ca_cert_path: str | None = None
    tls_verify: bool = True
    timeout_seconds: int = Field(default=10, ge=1, le=300)  # int: ldap3 packs it into SO_RCVTIMEO
    email_attribute: str = "mail"
    name_attribute: str = "cn"
    username_attribute: str | None = None  # e.g. uid / sAMAccountName; default: typed username, lowercased
    level_mapping: dict[str, list[str]] = Field(default_factory=dict)  # group DN or bare CN -> levels

    @field_validator("server")
    @classmethod
    def _check_server(cls, v: str) -> str:
        v = v.strip()
        try:
            u = urlsplit(v)
            ok = u.scheme in ("ldap", "ldaps") and bool(u.hostname) and u.path in ("", "/") and not u.query
            u.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"server must be an ldap:// or ldaps:// URL such as ldaps://ldap.corp.com:636, got {v!r}")
        return v

    @field_validator("base_dn", "bind_dn", "user_search_base")
    @classmethod
    def _check_dn(cls, v: str | None, info: ValidationInfo) -> str | None:
        try:
            return v if v is None else (parse_dn(v.strip()) and v.strip())
        except LDAPException:
            raise ValueError(f"{info.field_name} is not a valid DN: {v!r}") from None

    @field_validator("user_search_filter")
    @classmethod
    def _check_filter(cls, v: str) -> str:
        v = v.strip()
        if "{username}" not in v:
            raise ValueError("user_search_filter must contain {username}, e.g. (sAMAccountName={username})")
        depths = [v[:i + 1].count("(") - v[:i + 1].count(")") for i in range(len(v))]
        if not v.startswith("(") or min(depths) < 0 or depths[-1] != 0:
            raise ValueError(f"user_search_filter must be a parenthesized LDAP filter, got {v!r}")
        return v

    @field_validator("level_mapping")
    @classmethod
    def _check_mapping(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for group, levels in v.items():
            bad = [level for level in levels if level not in LEVELS]
            if not group.strip() or bad:
                raise ValueError(f"level_mapping[{group!r}]: unknown level(s) {bad} or empty group "
                                 f"(levels allowed: {', '.join(LEVELS)})")
        return v

    @model_validator(mode="after")
    def _check_tls_mode(self) -> LdapConfig:
        if self.start_tls and self.ssl:
            raise ValueError("start_tls cannot be combined with use_ssl / an ldaps:// server: choose one")
        return self

    @property
    def ssl(self) -> bool:
        return self.use_ssl or self.server.lower().startswith("ldaps://")


@contextlib.contextmanager
def _ldap_errors(config: LdapConfig):
    """ldap3 exceptions -> ProviderUnavailable (network, timeout, TLS) or ProviderMisconfigured (the rest)."""
    try:
        yield
    except ExternalAuthError:
        raise
    except (LDAPCommunicationError, LDAPStartTLSError) as exc:
        text = str(exc).replace(config.bind_password, "***")
        low = text.lower()
        kind = ("TLS handshake or certificate verification failed" if any(k in low for k in ("ssl", "tls", "certif"))
                else "timed out" if "timed out" in low or "timeout" in low else "connection failed")
        log.warning("LDAP server %s unavailable: %s", config.server, text)
        raise ProviderUnavailable(f"LDAP server {config.server} unavailable: {kind}") from None
    except LDAPException as exc:
        log.warning("LDAP provider %s misconfigured: %s", config.server, str(exc).replace(config.bind_password, "***"))
        raise ProviderMisconfigured(f"LDAP configuration error: {type(exc).__name__}") from None


def _result_error(config: LdapConfig, result: dict, what: str) -> ExternalAuthError:
    code, desc = result.get("result"), result.get("description")
    log.warning("LDAP %s on %s failed: %s (%s) %s", what, config.server, desc, code, result.get("message", ""))
    if code in _TRANSIENT:
        return ProviderUnavailable(f"LDAP server {config.server} unavailable: {what} failed ({desc})")
    return ProviderMisconfigured(f"LDAP {what} failed ({desc}): check the provider configuration")


def _server(config: LdapConfig) -> Server:
    u = urlsplit(config.server)
    with _ldap_errors(config):  # Tls() rejects a ca_cert_path that does not exist
        tls = Tls(validate=ssl.CERT_REQUIRED if config.tls_verify else ssl.CERT_NONE,
                  ca_certs_file=config.ca_cert_path or None) if config.ssl or config.start_tls else None
        return Server(u.hostname, port=u.port or (636 if config.ssl else 389), use_ssl=config.ssl, tls=tls,
                      get_info=NONE, connect_timeout=config.timeout_seconds)


def _close(conn: Connection) -> None:
    with contextlib.suppress(LDAPException, OSError):  # e.g. a socket broken by a failed TLS handshake
        conn.unbind()


def _bind(config: LdapConfig, server: Server, dn: str, password: str, rejected: ExternalAuthError) -> Connection:
    """A bound connection (after StartTLS when configured); raises ``rejected`` if the bind is refused."""
    conn = Connection(server, user=dn, password=password, receive_timeout=config.timeout_seconds,
                      auto_referrals=False, read_only=True, raise_exceptions=False)
    try:
        with _ldap_errors(config):
            conn.open(read_server_info=False)
            if config.start_tls and not conn.start_tls(read_server_info=False):
                raise ProviderUnavailable(f"LDAP server {config.server} unavailable: StartTLS failed")
            if conn.bind():
                return conn
        raise _result_error(config, conn.result, "bind") if conn.result.get("result") in _TRANSIENT else rejected
    except BaseException:
        _close(conn)
        raise


def _entries(conn: Connection) -> list[dict]:
    return [r for r in (conn.response or []) if r.get("type") == "searchResEntry"]


def _values(attrs: dict, name: str | None) -> list[str]:
    raw = next((v for k, v in attrs.items() if name and k.lower() == name.lower()), None)
    raw = [] if raw is None else raw if isinstance(raw, (list, tuple)) else [raw]
    return [x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in raw]


def _rdns(dn: str) -> list[tuple[str, str]]:
    try:
        return [(a.lower(), v.lower()) for a, v, _ in parse_dn(dn, strip=True)]
    except LDAPException:
        return [("", dn.strip().lower())]


def map_levels(level_mapping: dict[str, list[str]], groups: list[str]) -> tuple[str, ...]:
    """Levels granted by ``groups`` (DNs): keys with ``=`` match a DN case-insensitively, others a group's CN."""
    wanted: dict[tuple, set[str]] = {}
    for key, levels in level_mapping.items():
        norm = ("dn", tuple(_rdns(key))) if "=" in key else ("cn", key.strip().lower())
        wanted.setdefault(norm, set()).update(levels)
    found: set[str] = set()
    for group in groups:
        rdns = _rdns(group)
        cn = rdns[0][1] if rdns[0][0] == "cn" else None
        found |= wanted.get(("dn", tuple(rdns)), set()) | wanted.get(("cn", cn), set())
    return tuple(level for level in LEVELS if level in found)


def _find_user(config: LdapConfig, conn: Connection, username: str) -> dict:
    flt = config.user_search_filter.replace("{username}", escape_filter_chars(username))
    attrs = {"memberOf", config.email_attribute, config.name_attribute} | ({config.username_attribute} - {None})
    conn.search(config.user_search_base or config.base_dn, flt, SUBTREE, attributes=sorted(attrs),
                size_limit=2, time_limit=config.timeout_seconds)
    if conn.result.get("result") not in (0, 4):  # 4 sizeLimitExceeded: more than one match
        raise _result_error(config, conn.result, "user search")
    entries = _entries(conn)
    if len(entries) != 1:
        log.info("LDAP login for %r: %d matching entries", username, len(entries))
        raise InvalidCredentials(GENERIC)
    return entries[0]


def _groups(config: LdapConfig, conn: Connection, entry: dict) -> list[str]:
    groups = _values(entry.get("attributes", {}), "memberOf")
    if not groups:  # no memberOf overlay: look for groups that list the user as a member
        flt = f"(&(objectClass=groupOfNames)(member={escape_filter_chars(entry['dn'])}))"
        conn.search(config.base_dn, flt, SUBTREE, attributes=["cn"], time_limit=config.timeout_seconds)
        if conn.result.get("result") != 0:
            log.warning("LDAP group search on %s failed: %s", config.server, conn.result.get("description"))
        groups = [e["dn"] for e in _entries(conn)]
    return groups


def authenticate(config: LdapConfig, provider_name: str, username: str, password: str) -> ExternalIdentity:
    """Verify ``username``/``password`` against the directory; return who they are and their levels."""
    username = (username or "").strip()
    if not username or not password:
        raise InvalidCredentials(GENERIC)
    server = _server(config)
    svc = _bind(config, server, config.bind_dn, config.bind_password,
                ProviderMisconfigured("LDAP service bind rejected: check bind_dn and bind_password"))
    try:
        with _ldap_errors(config):
            entry = _find_user(config, svc, username)
            groups = _groups(config, svc, entry)
    finally:
        _close(svc)
    _close(_bind(config, server, entry["dn"], password, InvalidCredentials(GENERIC)))
    levels = map_levels(config.level_mapping, groups)
    if not levels:
        log.info("LDAP login for %s: no mapped group among %s", entry["dn"], groups)
        raise NotMapped("none of your directory groups is mapped to a level")
    attrs = entry.get("attributes", {})
    first = lambda name: next(iter(_values(attrs, name)), None)  # noqa: E731
    return ExternalIdentity(provider=provider_name, subject=entry["dn"],
                            username=first(config.username_attribute) or username.lower(),
                            email=first(config.email_attribute), display_name=first(config.name_attribute),
                            groups=tuple(groups), levels=levels)


def test_connection(config: LdapConfig) -> dict:
    """Service bind plus a base search of base_dn (and user_search_base); for a provider "test" endpoint."""
    conn = _bind(config, _server(config), config.bind_dn, config.bind_password,
                 ProviderMisconfigured("LDAP service bind rejected: check bind_dn and bind_password"))
    try:
        with _ldap_errors(config):
            for base in dict.fromkeys(filter(None, (config.base_dn, config.user_search_base))):
                conn.search(base, "(objectClass=*)", BASE, attributes=["1.1"], time_limit=config.timeout_seconds)
                if conn.result.get("result") == 32:
                    raise ProviderMisconfigured(f"{base!r} does not exist or is not readable by bind_dn")
                if conn.result.get("result") != 0:
                    raise _result_error(config, conn.result, "base search")
    finally:
        _close(conn)
    return {"ok": True, "message": f"bound as {config.bind_dn} on {config.server}; base DN found"}


test_connection.__test__ = False  # keep pytest from collecting it when a test module imports it
