"""A real OpenLDAP ``slapd`` on 127.0.0.1 for tests: plain LDAP (with StartTLS) and LDAPS on random ports.

Needs the Debian packages ``slapd`` and ``openssl`` (``tests/servers/install.sh`` installs them). Each
instance lives in its own temp dir: a throwaway CA + server certificate made with the ``openssl`` CLI,
a ``slapd.conf`` (mdb backend, memberof overlay), a database seeded with ``slapadd``, then groups added
online through the server so that the memberof overlay fills in ``memberOf`` on the users.

Directory (suffix ``dc=corp,dc=test``):
  ou=people: alice (ML-Admins), bob (ML-Researchers), carol (Unmapped-Group only), ``eve(x)``
             (ML-Researchers), frank (Legacy-Leads, loaded offline so he has *no* memberOf), dup1/dup2
             (same mail ``shared@corp.test``). Each also has ``sAMAccountName`` (aux class corpAccount).
  ou=groups: the groupOfNames above.  ou=services: cn=svc-ml, which may read everything but passwords.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.ports import free_port

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SUFFIX = "dc=corp,dc=test"
ROOT_DN, ROOT_PW = f"cn=admin,{SUFFIX}", "adminpw"
SVC_DN, SVC_PW = f"cn=svc-ml,ou=services,{SUFFIX}", "svc-secret"
PEOPLE, GROUPS = f"ou=people,{SUFFIX}", f"ou=groups,{SUFFIX}"
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "eve(x)": "eve-pw",
             "frank": "frank-pw", "dup1": "dup1-pw", "dup2": "dup2-pw"}
ONLINE_GROUPS = {"ML-Admins": ["alice"], "ML-Researchers": ["bob", "eve(x)"], "Unmapped-Group": ["carol"]}
OFFLINE_GROUPS = {"Legacy-Leads": ["frank"]}  # no memberOf on members: exercises the member= search


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


CORP_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.1.1 NAME 'corpAccount' SUP top AUXILIARY MAY ( sAMAccountName ) )
"""

SLAPD_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include {d}/corp.schema
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCACertificateFile {d}/ca.crt
TLSCertificateFile {d}/server.crt
TLSCertificateKeyFile {d}/server.key
database mdb
suffix "{suffix}"
rootdn "{root_dn}"
rootpw {root_pw}
directory {d}/db
maxsize 33554432
index objectClass eq
index uid,sAMAccountName,cn,mail eq
index member eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
access to attrs=userPassword by self write by anonymous auth by * none
access to * by dn.exact="{svc_dn}" read by self read by * none
"""


def _base_ldif() -> str:
    parts = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: corp\no: Corp\n"]
    for ou in ("people", "groups", "services"):
        parts.append(f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n")
    parts.append(f"dn: {SVC_DN}\nobjectClass: applicationProcess\nobjectClass: simpleSecurityObject\n"
                 f"cn: svc-ml\nuserPassword: {SVC_PW}\n")
    for uid, pw in PASSWORDS.items():
        mail = "shared@corp.test" if uid.startswith("dup") else f"{uid}@corp.test"
        parts.append(f"dn: {user_dn(uid)}\nobjectClass: inetOrgPerson\nobjectClass: corpAccount\nuid: {uid}\n"
                     f"sAMAccountName: {uid}\ncn: {uid.capitalize()} Tester\nsn: Tester\nmail: {mail}\n"
                     f"userPassword: {pw}\n")
    for cn, members in OFFLINE_GROUPS.items():
        parts.append(f"dn: {group_dn(cn)}\nobjectClass: groupOfNames\ncn: {cn}\n"
                     + "".join(f"member: {user_dn(m)}\n" for m in members))
    return "\n".join(parts)


def _make_certs(d: Path) -> None:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost (EC keys: instant to make)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=slapd test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext")


class SlapdServer:
    """``with SlapdServer() as s: s.url, s.ldaps_url, s.ca_cert`` -- or ``start()`` / ``stop()``."""

    def __init__(self, ready_timeout: float = 10.0) -> None:
        self.ready_timeout = ready_timeout
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.port = self.ldaps_port = 0

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ca_cert(self) -> str:
        return str(self.dir / "ca.crt")

    def start(self) -> SlapdServer:
        for tool in (SLAPD, SLAPADD):
            if not Path(tool).exists():
                raise RuntimeError(f"{tool} is missing: run tests/servers/install.sh")
        self.dir = Path(tempfile.mkdtemp(prefix="slapd-test-"))
        d = self.dir
        (d / "db").mkdir()
        _make_certs(d)
        (d / "corp.schema").write_text(CORP_SCHEMA)
        (d / "slapd.conf").write_text(SLAPD_CONF.format(d=d, suffix=SUFFIX, root_dn=ROOT_DN, root_pw=ROOT_PW,
                                                       svc_dn=SVC_DN))
        (d / "base.ldif").write_text(_base_ldif())
        subprocess.run([SLAPADD, "-q", "-f", str(d / "slapd.conf"), "-l", str(d / "base.ldif")],
                       check=True, capture_output=True)
        for _attempt in range(5):  # a port taken between probe and bind: retry with new ones
            if self._launch():
                self._add_groups()
                return self
        self.stop()
        raise RuntimeError(f"slapd did not start: {(d / 'slapd.log').read_text()[-2000:]}")

    def _launch(self) -> bool:
        self.port, self.ldaps_port = free_port(), free_port()
        if self.port == self.ldaps_port:
            return False
        log = open(self.dir / "slapd.log", "ab")  # noqa: SIM115 - slapd keeps it until it exits
        self.proc = subprocess.Popen(
            [SLAPD, "-d", "none", "-h", f"{self.url}/ {self.ldaps_url}/", "-f", str(self.dir / "slapd.conf")],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + self.ready_timeout
        pending = [self.port, self.ldaps_port]
        while pending:
            try:
                with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5):
                    pending.pop(0)
                    continue
            except OSError:
                pass
            try:  # doubles as the poll interval: returns at once if slapd has exited
                self.proc.wait(timeout=0.01)
                return False
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    self._terminate()
                    raise RuntimeError(f"slapd not listening after {self.ready_timeout}s")
        return True

    def _add_groups(self) -> None:
        from ldap3 import Connection, Server
        with Connection(Server(self.url), ROOT_DN, ROOT_PW, auto_bind=True, raise_exceptions=True) as c:
            for cn, members in ONLINE_GROUPS.items():
                c.add(group_dn(cn), ["groupOfNames"], {"cn": cn, "member": [user_dn(m) for m in members]})

    def _terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        self._terminate()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> SlapdServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
