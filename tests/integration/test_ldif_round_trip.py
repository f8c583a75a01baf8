"""A server mirrored into the embedded directory through LDIF, and OpenLDAP's own
tools reading and writing the same files.

A slapd of this module's own is loaded offline (``slapadd``, not idsync)
with entries that exercise LDIF: base64 values (non-ASCII, leading and
trailing spaces, binary), folded lines, DNs with escaped specials and
non-ASCII DNs. Its export by idsync, imported into a new embedded directory
and exported again, holds the same entries and values; ``ldapsearch`` reads
the same entries from the server; ``ldapadd`` loads idsync's export into
another server.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.connectors.ldap import LdapDirectory
from idsync.connectors.local import LocalDirectory
from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Attrs, Scope
from idsync.domain.ldif_reader import LdifRecord, read_ldif
from idsync.services.directory import write_ldif
from idsync.services.ldif_import import Importer, ImportEvent
from tests.servers.slapd import BASE_DN, SlapdServer, start_slapd

pytestmark = pytest.mark.slapd

PHOTO = bytes(range(256)) + b"\x00\xff\xfe"


def _b64(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode()


TREE = f"""\
dn: ou=People,{BASE_DN}
objectClass: organizationalUnit
ou: People
description: a long description, folded by hand the way ldapsearch folds lines
  longer than seventy-six columns, over three lines of this file so that th
 e reader has to join them

dn: cn=Doe\\, John+uid=jd,ou=People,{BASE_DN}
objectClass: inetOrgPerson
cn: Doe, John
uid: jd
sn:: {_b64(" Doe ")}
displayName:: {_b64("Zoë Ünal")}
givenName:: {_b64(":colon first")}
title:: {_b64("<less-than first")}
jpegPhoto:: {_b64(PHOTO)}
mail: jd@example.org
mail: john.doe@example.org

dn:: {_b64(f"cn=Zoë Ünal,ou=People,{BASE_DN}")}
objectClass: inetOrgPerson
cn:: {_b64("Zoë Ünal")}
sn:: {_b64("Ünal")}
description:: {_b64("line one" + chr(10) + "line two")}

dn: ou=R\\2B D\\3B Lab\\3C1\\3E,{BASE_DN}
objectClass: organizationalUnit
ou: R+D;Lab<1>

dn: cn=Staff,ou=R\\2B D\\3B Lab\\3C1\\3E,{BASE_DN}
objectClass: groupOfNames
cn: Staff
member: cn=Doe\\, John+uid=jd,ou=People,{BASE_DN}
member:: {_b64(f"cn=Zoë Ünal,ou=People,{BASE_DN}")}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[SlapdServer]:
    started = start_slapd(tls=False, extra_ldif=TREE)
    try:
        yield started
    finally:
        started.stop()


def connect(server: SlapdServer) -> LdapDirectory:
    return LdapDirectory(url=server.url, bind_dn=server.root_dn, bind_password=server.root_pw)


def export(directory: LdapDirectory | LocalDirectory) -> str:
    out = io.StringIO()
    write_ldif(directory.search(BASE_DN, Scope.SUB), out)
    return out.getvalue()


DN_VALUED = frozenset({"member", "uniquemember", "manager", "owner", "seealso"})
"""Attributes whose values are DNs, compared normalised: a server may respell
them (slapd writes ``cn=Doe\\, John`` added online as ``cn=Doe\\2C John``)."""


def entries(text: str) -> dict[str, Attrs]:
    """Normalised DN → attributes of each record of an LDIF text (every record
    must read), values of DN-valued attributes normalised."""
    found: dict[str, Attrs] = {}
    for item in read_ldif(text.encode().splitlines(keepends=True)):
        assert isinstance(item, LdifRecord), f"line {item.line}: {item.message}"
        assert item.change.attrs is not None
        found[normalize_dn(item.change.dn)] = Attrs(
            (name, [normalize_dn(v) for v in values] if name.lower() in DN_VALUED else values)
            for name, values in item.change.attrs.pairs()
        )
    return found


def tool(server: SlapdServer, name: str, *args: str, stdin: str | None = None) -> str:
    program = shutil.which(name)
    assert program, f"{name} is not installed (Debian package ldap-utils)"
    done = subprocess.run(
        [program, "-x", "-H", server.url, "-D", server.root_dn, "-w", server.root_pw, *args],
        input=stdin, capture_output=True, text=True, check=False, env={**os.environ, "LDAPNOINIT": "1"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_export_of_the_server_mirrored_into_the_embedded_directory_exports_the_same(
    server: SlapdServer, tmp_path: Path
) -> None:
    with connect(server) as ldap_directory:
        original = export(ldap_directory)
    assert max(len(line) for line in original.splitlines()) <= 76
    expected = entries(original)
    assert len(expected) == 6
    events: list[ImportEvent] = []
    with LocalDirectory(tmp_path / "mirror.db", BASE_DN) as mirror:
        result = Importer(mirror, events.append).run(read_ldif(io.BytesIO(original.encode())))
        assert events == [] and (result.added, result.failed) == (6, 0), "the suffix entry replaced the generated one"
        again = export(mirror)
    assert entries(again) == expected
    photo = expected[normalize_dn(f"cn=Doe\\, John+uid=jd,ou=People,{BASE_DN}")]["jpegPhoto"][0]
    assert photo.encode("utf-8", "surrogateescape") == PHOTO


def test_ldapsearch_reads_the_entries_idsync_exports(server: SlapdServer) -> None:
    with connect(server) as ldap_directory:
        ours = entries(export(ldap_directory))
    theirs = entries(tool(server, "ldapsearch", "-LLL", "-b", BASE_DN, "(objectClass=*)"))
    assert theirs == ours


def test_ldapadd_loads_an_export_of_the_embedded_directory(server: SlapdServer, tmp_path: Path) -> None:
    with connect(server) as ldap_directory:
        original = export(ldap_directory)
    with LocalDirectory(tmp_path / "mirror.db", BASE_DN) as mirror:
        Importer(mirror, lambda event: None).run(read_ldif(io.BytesIO(original.encode())))
        copied = export(mirror)
    other = start_slapd(tls=False)  # an empty server but for its suffix entry
    try:
        without_suffix = copied.split("\n\n", 2)[2]  # the version line, then the suffix entry, come first
        tool(other, "ldapadd", stdin=without_suffix)
        loaded = entries(tool(other, "ldapsearch", "-LLL", "-b", BASE_DN, "(objectClass=*)"))
    finally:
        other.stop()
    assert loaded == entries(original)
