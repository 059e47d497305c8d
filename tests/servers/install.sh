#!/usr/bin/env bash
# Installs the Debian packages the test servers in tests/servers need (OpenLDAP slapd,
# ldap-utils, openssl, Dovecot IMAP with dovecot-lda and doveadm, PostgreSQL, Redis, Prometheus for promtool) if any is
# missing. Idempotent and quick when everything is present.
set -euo pipefail

missing=()
test -x /usr/sbin/slapd || missing+=(slapd)
test -x /usr/sbin/slapadd || missing+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || missing+=(ldap-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
test -x /usr/sbin/dovecot || missing+=(dovecot-imapd)
test -x /usr/lib/dovecot/dovecot-lda || missing+=(dovecot-imapd)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)  # promtool: the metrics, rules and config checks
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

# de-duplicate
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
echo "tests/servers/install.sh: installing ${pkgs}" >&2

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends ${pkgs} >/dev/null
