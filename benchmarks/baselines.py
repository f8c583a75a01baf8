"""The raw tools idsync is compared with: ldapadd and bare python-ldap loops."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import ldap
from ldap.controls import SimplePagedResultsControl

from benchmarks.data import COLUMNS


def connect(url: str, dn: str, password: str) -> ldap.ldapobject.LDAPObject:
    conn = ldap.initialize(url)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
    conn.simple_bind_s(dn, password)
    return conn


def ldapadd(url: str, dn: str, password: str, ldif: Path) -> float:
    """Seconds ``ldapadd -c`` takes to load *ldif* (one operation at a time)."""
    started = time.perf_counter()
    subprocess.run(
        ["ldapadd", "-c", "-x", "-H", url, "-D", dn, "-y", _password_file(ldif.parent, password), "-f", str(ldif)],
        check=True, capture_output=True, env={**os.environ, "LDAPNOINIT": "1"},
    )
    return time.perf_counter() - started


def _password_file(folder: Path, password: str) -> str:
    path = folder / "bind.pw"
    path.write_text(password, encoding="utf-8")
    path.chmod(0o600)
    return str(path)


def pipelined(conn: ldap.ldapobject.LDAPObject, operations: Iterable[tuple[str, str, object]], window: int = 64) -> float:
    """Seconds to run (kind, dn, payload) operations with *window* outstanding:
    kind is add (payload: modlist), modify (payload: modlist) or delete."""
    started = time.perf_counter()
    outstanding = 0
    for kind, dn, payload in operations:
        if kind == "add":
            conn.add_ext(dn, payload)
        elif kind == "modify":
            conn.modify_ext(dn, payload)
        else:
            conn.delete_ext(dn)
        outstanding += 1
        if outstanding >= window:
            conn.result3(ldap.RES_ANY)
            outstanding -= 1
    while outstanding:
        conn.result3(ldap.RES_ANY)
        outstanding -= 1
    return time.perf_counter() - started


def add_operations(people: Iterable[dict[str, str]], container: str) -> Iterator[tuple[str, str, object]]:
    for p in people:
        modlist = [("objectClass", [b"inetOrgPerson"])] + [(n, [p[n].encode()]) for n in COLUMNS]
        yield "add", f"uid={p['uid']},{container}", modlist


def paged_search(conn: ldap.ldapobject.LDAPObject, base: str, attributes: list[str], page: int = 1000) -> tuple[float, int]:
    """Seconds and entries of a paged one-level search of *base* reading *attributes*."""
    started = time.perf_counter()
    control = SimplePagedResultsControl(True, size=page, cookie=b"")
    count = 0
    while True:
        msgid = conn.search_ext(base, ldap.SCOPE_ONELEVEL, "(objectClass=inetOrgPerson)", attributes, serverctrls=[control])
        _, data, _, controls = conn.result3(msgid)
        count += len(data)
        cookie = next((c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType), b"")
        if not cookie:
            break
        control.cookie = cookie
    return time.perf_counter() - started, count
