"""A private OpenLDAP server for tests.

Each test session gets its own ``slapd`` in a temporary folder, listening on
loopback ports nobody else uses, with the base entries loaded offline by
``slapadd -q`` and the database tuned for speed (``dbnosync``, ``writemap``)
because durability does not matter here. The server also serves
``cn=monitor`` so tests can count the write operations it received (an
assertion like "a preview wrote nothing" needs a count from the server, not
from the client under test).

slapd must be installed (Debian packages ``slapd ldap-utils``). A missing
slapd is an error, never a skip: a suite that silently skips its directory
tests proves nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import ldap

from tests.servers.tls import make_ca

SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")
BASE_DN = "dc=example,dc=org"
ROOT_DN = "cn=admin,dc=example,dc=org"
ROOT_PW = "slapd-test-secret"
START_TIMEOUT = 15.0

BASE_LDIF = f"""\
dn: {BASE_DN}
objectClass: top
objectClass: dcObject
objectClass: organization
dc: example
o: Example

"""

# Operations of cn=Operations,cn=Monitor that change the directory.
WRITE_OPERATIONS = ("Add", "Modify", "Modrdn", "Delete")


class SlapdUnavailable(RuntimeError):
    """slapd is not installed or did not start; the message says what to do."""


@dataclass
class SlapdServer:
    """A running private slapd; ``stop()`` ends it and removes its folder."""

    url: str
    ldaps_url: str | None
    base_dn: str
    root_dn: str
    root_pw: str
    ca_file: str | None
    workdir: Path
    pid: int
    _process: subprocess.Popen[bytes] = field(repr=False)

    def connect(self) -> ldap.ldapobject.LDAPObject:
        """A plain python-ldap connection bound as the root DN (for test setup)."""
        conn = ldap.initialize(self.url)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5.0)
        conn.simple_bind_s(self.root_dn, self.root_pw)
        return conn

    def new_container(self, prefix: str = "t") -> str:
        """Create a fresh ``ou=<prefix><hex>`` under the suffix and return its DN."""
        ou = f"{prefix}{uuid.uuid4().hex[:12]}"
        dn = f"ou={ou},{self.base_dn}"
        conn = self.connect()
        try:
            conn.add_s(dn, [("objectClass", [b"organizationalUnit"]), ("ou", [ou.encode()])])
        finally:
            conn.unbind_s()
        return dn

    def stop(self) -> None:
        """Stop slapd by its PID and delete its files."""
        if self._process.poll() is None:
            os.kill(self.pid, 15)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, 9)
                self._process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def find_program(name: str) -> str:
    """Path of an OpenLDAP program, or SlapdUnavailable saying how to install it."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if not found:
        raise SlapdUnavailable(
            f"{name} is not installed: install the Debian packages 'slapd ldap-utils' "
            "(apt-get install -y slapd ldap-utils); the LDAP tests need a real slapd"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(workdir: Path, tls: tuple[Path, Path, Path] | None, maxsize: int = 1 << 30) -> str:
    lines = [f"include {SCHEMA_DIR / s}.schema" for s in SCHEMAS]
    lines += [
        f"pidfile {workdir / 'slapd.pid'}",
        f"argsfile {workdir / 'slapd.args'}",
        f"modulepath {MODULE_DIR}",
        "moduleload back_mdb",
    ]
    # Debian builds back_monitor into slapd; other builds ship it as a module.
    if any(MODULE_DIR.glob("back_monitor.*")):
        lines.append("moduleload back_monitor")
    if tls:
        ca, cert, key = tls
        lines += [
            f"TLSCACertificateFile {ca}",
            f"TLSCertificateFile {cert}",
            f"TLSCertificateKeyFile {key}",
        ]
    lines += [
        "sizelimit unlimited",
        "",
        "database mdb",
        f'suffix "{BASE_DN}"',
        f'rootdn "{ROOT_DN}"',
        f"rootpw {ROOT_PW}",
        f"directory {workdir / 'db'}",
        f"maxsize {maxsize}",
        "dbnosync",
        "envflags writemap",
        "index objectClass,uid eq",
        "",
        "database monitor",
        f'access to * by dn.exact="{ROOT_DN}" read by * none',
        "",
    ]
    return "\n".join(lines)


def start_slapd(*, tls: bool = True, maxsize: int = 1 << 30, extra_ldif: str = "") -> SlapdServer:
    """Start a private slapd (with ldaps:// and StartTLS when *tls*) and wait until it binds.

    *maxsize* bounds the database file (benchmarks of a million entries need more).
    *extra_ldif* (entries after the suffix) is loaded offline with the base
    entries: ``slapadd -q`` loads ~50,000 entries a second, far faster than adds.
    """
    slapd = find_program("slapd")
    slapadd = find_program("slapadd")
    workdir = Path(tempfile.mkdtemp(prefix="idsync-slapd-"))
    try:
        (workdir / "db").mkdir()
        tls_files = None
        ca_file = None
        if tls:
            ca = make_ca(workdir / "tls")
            cert, key = ca.issue_server_certificate(workdir / "tls")
            tls_files = (ca.cert_file, cert, key)
            ca_file = str(ca.cert_file)
        conf = workdir / "slapd.conf"
        conf.write_text(_config(workdir, tls_files, maxsize))
        (workdir / "base.ldif").write_text(BASE_LDIF + extra_ldif)
        env = {**os.environ, "LDAPNOINIT": "1"}
        loaded = subprocess.run(
            [slapadd, "-q", "-f", str(conf), "-b", BASE_DN, "-l", str(workdir / "base.ldif")],
            env=env, capture_output=True, text=True, check=False,
        )
        if loaded.returncode != 0:
            raise SlapdUnavailable(f"slapadd failed ({loaded.returncode}): {loaded.stderr.strip()}")
        port = free_port()
        url = f"ldap://127.0.0.1:{port}"
        ldaps_url = f"ldaps://127.0.0.1:{free_port()}" if tls else None
        listen = " ".join(u + "/" for u in (url, ldaps_url) if u)
        log = (workdir / "slapd.log").open("wb")
        process = subprocess.Popen(
            [slapd, "-f", str(conf), "-h", listen, "-d", "0"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        server = SlapdServer(
            url=url, ldaps_url=ldaps_url, base_dn=BASE_DN, root_dn=ROOT_DN, root_pw=ROOT_PW,
            ca_file=ca_file, workdir=workdir, pid=process.pid, _process=process,
        )
        _wait_until_bound(server)
        return server
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _wait_until_bound(server: SlapdServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server._process.poll() is not None:
            output = (server.workdir / "slapd.log").read_text(errors="replace").strip()
            raise SlapdUnavailable(
                f"slapd exited with code {server._process.returncode} at start: {output[-2000:]}"
            )
        try:
            server.connect().unbind_s()
            return
        except ldap.LDAPError as exc:
            last = exc
            time.sleep(0.01)
    server.stop()
    raise SlapdUnavailable(f"slapd did not answer a bind within {START_TIMEOUT:.0f}s: {last}")


def write_count(server: SlapdServer) -> int:
    """How many write operations (add, modify, modrdn, delete) the server has received.

    Read from ``cn=Operations,cn=Monitor``; compare two readings to assert a
    piece of code wrote nothing (the reading itself is a search, not a write).
    """
    conn = server.connect()
    try:
        results = conn.search_s(
            "cn=Operations,cn=Monitor", ldap.SCOPE_ONELEVEL, "(objectClass=*)",
            ["cn", "monitorOpInitiated"],
        )
    finally:
        conn.unbind_s()
    total = 0
    for _dn, attrs in results:
        name = attrs.get("cn", [b""])[0].decode()
        if name in WRITE_OPERATIONS:
            total += int(attrs["monitorOpInitiated"][0])
    return total


def operation_counts(server: SlapdServer) -> dict[str, int]:
    """Operations the server has received, by name (``Search``, ``Modify``, ``Add``…).

    Each page of a paged search is one ``Search``; the reading itself counts
    as one ``Search`` and one ``Bind``, so compare differences between
    readings with that in mind.
    """
    conn = server.connect()
    try:
        results = conn.search_s(
            "cn=Operations,cn=Monitor", ldap.SCOPE_ONELEVEL, "(objectClass=*)",
            ["cn", "monitorOpInitiated"],
        )
    finally:
        conn.unbind_s()
    return {
        attrs["cn"][0].decode(): int(attrs["monitorOpInitiated"][0])
        for _dn, attrs in results
        if "cn" in attrs and "monitorOpInitiated" in attrs
    }


def search_count(server: SlapdServer) -> int:
    """How many search operations (each page of a paged search is one) the server
    has received; every reading counts itself once."""
    return operation_counts(server)["Search"]


def entries_sent(server: SlapdServer) -> int:
    """How many entries the server has returned to searches, all clients together
    (from ``cn=Entries,cn=Statistics,cn=Monitor``; a reading returns a few itself)."""
    conn = server.connect()
    try:
        results = conn.search_s("cn=Entries,cn=Statistics,cn=Monitor", ldap.SCOPE_BASE, "(objectClass=*)", ["monitorCounter"])
    finally:
        conn.unbind_s()
    return int(results[0][1]["monitorCounter"][0])
