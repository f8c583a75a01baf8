"""The ``ldap`` identity store: any LDAPv3 server, through python-ldap.

Why it is built the way it is:

- **Writes are pipelined** (see :mod:`idsync.connectors.ldap_pipeline`):
  up to ``window`` asynchronous operations in flight on each of
  ``connections`` connections, in plan order where the plan's order matters.
- **Reads are paged** (RFC 2696) and streamed as :class:`Entry` objects, so
  memory stays bounded whatever the size of the directory.
- **The connection is opened lazily** and reused; an error that leaves it in
  an unknown state drops it, and the next call reconnects.
- **Active Directory** (``flavor="active_directory"``) changes only small
  things, kept in :mod:`idsync.connectors.activedirectory`: ``objectGUID``
  read as GUID text and used as the anchor, ``unicodePwd`` written encoded and
  only over TLS, accounts disabled through ``userAccountControl``. Range
  retrieval (``member;range=0-1499``) is completed whatever the flavor, so
  callers always see every value.

- **Preconditions the server checks**: :meth:`LdapDirectory.checks_values`
  says which attributes can have values deleted by value (they have an
  equality matching rule in the server's schema), so the engine can send a
  replace as "delete the values seen, add the new ones" and let the server
  refuse it when the values changed meanwhile.

An instance is not thread-safe: use one per thread.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ldap
from ldap.controls import SimplePagedResultsControl

from idsync import settings
from idsync.connectors.activedirectory import (
    ACCOUNT_CONTROL_ATTRIBUTE,
    ANCHOR_ATTRIBUTE,
    PASSWORD_ATTRIBUTE,
    AccountControl,
    ActiveDirectoryCodec,
    complete_ranges,
)
from idsync.connectors.base import ApplyOutcome, DirectorySchema
from idsync.connectors.ldap_errors import TRANSIENT, connection_error, describe
from idsync.connectors.ldap_pipeline import TEXT, ValueCodec, pipelined
from idsync.connectors.ldap_schema import equality_rules, read_subschema, to_directory_schema
from idsync.domain.changes import Change
from idsync.domain.definitions import LdapStore
from idsync.domain.entry import Attrs, EncodedAttrs, Entry, Scope
from idsync.errors import AuthError, ConfigError, ConnectorError, NotFoundError, TransientError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_SCOPES = {Scope.BASE: ldap.SCOPE_BASE, Scope.ONE: ldap.SCOPE_ONELEVEL, Scope.SUB: ldap.SCOPE_SUBTREE}
_PAGED = {SimplePagedResultsControl.controlType: SimplePagedResultsControl}


FLAVORS = ("generic", "active_directory")

AD_REPLACED = frozenset({PASSWORD_ATTRIBUTE.lower(), ACCOUNT_CONTROL_ATTRIBUTE.lower()})
"""Active Directory attributes always written by replace: ``unicodePwd`` can
never be read (so its values cannot be named), and ``userAccountControl``
is changed by the server's own account logic."""


class LdapDirectory:
    """An LDAPv3 directory reached with python-ldap (simple bind, optional TLS)."""

    def __init__(
        self,
        *,
        url: str,
        bind_dn: str | None = None,
        bind_password: str | None = None,
        start_tls: bool = False,
        ca_file: str | None = None,
        tls_verify: bool = True,
        timeout: float = 10.0,
        page_size: int = 1000,
        window: int = 64,
        flavor: str = "generic",
        connections: int = 2,
    ) -> None:
        if not url.lower().startswith(("ldap://", "ldaps://")):
            raise ConfigError(f"LDAP URL {url!r} must start with ldap:// or ldaps://")
        if start_tls and url.lower().startswith("ldaps://"):
            raise ConfigError(f"LDAP URL {url!r} is TLS already: use ldap:// with start_tls, or ldaps:// alone")
        if page_size < 1 or window < 1 or connections < 1 or timeout <= 0:
            raise ConfigError("LDAP page_size, window and connections must be at least 1, timeout above 0")
        if flavor not in FLAVORS:
            raise ConfigError(f"LDAP flavor {flavor!r} is not known; use one of {', '.join(FLAVORS)}")
        self.url = url
        self.bind_dn = bind_dn
        self._password = bind_password
        self.start_tls = start_tls
        self.ca_file = ca_file
        self.tls_verify = tls_verify
        self.timeout = timeout
        self.page_size = page_size
        self.window = window
        self.connections = connections
        self._tls = start_tls or url.lower().startswith("ldaps://")
        self.flavor = flavor
        self._codec: ValueCodec | None = (
            ActiveDirectoryCodec(tls=self._tls) if flavor == "active_directory" else None
        )
        self._conn: Any = None
        self._writers: list[Any] = []  # the extra connections writes are spread over
        self._schema: DirectorySchema | None = None
        self._schema_read = False
        self._matching: dict[str, bool] | None = None

    def __repr__(self) -> str:
        return f"LdapDirectory(url={self.url!r}, bind_dn={self.bind_dn!r})"

    @property
    def anchor_attributes(self) -> tuple[str, ...]:
        """The attribute holding each entry's immutable id: ``objectGUID`` on AD, else ``entryUUID``."""
        return (ANCHOR_ATTRIBUTE,) if self.flavor == "active_directory" else ("entryUUID",)

    @property
    def account_control(self) -> AccountControl | None:
        """How accounts are disabled without a job-defined attribute (AD only)."""
        return AccountControl() if self.flavor == "active_directory" else None

    # ------------------------------------------------------------ connection

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _connect(self) -> Any:
        who = self.bind_dn or "anonymous"
        log.debug("connecting to %s as %s", self.url, who)
        try:
            conn = ldap.initialize(self.url)
        except ldap.LDAPError as exc:
            raise ConfigError(f"LDAP URL {self.url!r} is not valid: {describe(exc)}") from exc
        conn.timeout = self.timeout
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, self.timeout)
        conn.set_option(ldap.OPT_TIMEOUT, self.timeout)
        if self._tls:
            self._set_tls_options(conn)
        doing = "starting TLS"
        try:
            if self.start_tls:
                conn.start_tls_s()
            doing = f"binding as {who}"
            conn.simple_bind_s(self.bind_dn or "", self._password or "")
        except ldap.LDAPError as exc:
            _unbind_quietly(conn)
            raise connection_error(exc, self.url, doing, tls=self._tls) from exc
        log.debug("bound to %s as %s", self.url, who)
        return conn

    def _set_tls_options(self, conn: Any) -> None:
        demand = ldap.OPT_X_TLS_DEMAND if self.tls_verify else ldap.OPT_X_TLS_NEVER
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, demand)
        try:
            if self.ca_file:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, self.ca_file)
            # A new TLS context per connection makes the options above take effect.
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        except (ValueError, ldap.LDAPError) as exc:
            _unbind_quietly(conn)
            where = f"ca_file {self.ca_file!r}" if self.ca_file else "the system CA certificates"
            raise ConfigError(
                f"{self.url}: cannot set up TLS with {where}: check that the file exists "
                "and holds PEM certificates"
            ) from exc

    def _write_connections(self) -> list[Any]:
        """The connection, and the extra ones writes are spread over (opened once, kept).

        An extra connection the server will not give (a connection limit)
        is no reason to fail: the writes go over those there are.
        """
        conns = [self._connection()]
        while len(self._writers) < self.connections - 1:
            try:
                self._writers.append(self._connect())
            except TransientError as exc:
                log.warning(
                    "%s: writing over %d connection(s), not %d: another could not be opened (%s)",
                    self.url, 1 + len(self._writers), self.connections, exc.message,
                )
                self.connections = 1 + len(self._writers)
                break
        return conns + self._writers

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        writers, self._writers = self._writers, []
        for dropped in (conn, *writers):
            if dropped is not None:
                _unbind_quietly(dropped)

    def _failed(self, exc: ldap.LDAPError, doing: str) -> ConnectorError:
        """Translate a connection-level failure, dropping a connection now in doubt."""
        if isinstance(exc, TRANSIENT):
            self._drop()
        return connection_error(exc, self.url, doing, tls=self._tls)

    def close(self) -> None:
        self._drop()

    def __enter__(self) -> LdapDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reading

    def search(
        self,
        base: str,
        scope: Scope = Scope.SUB,
        filterstr: str = "(objectClass=*)",
        attributes: Sequence[str] | None = None,
    ) -> Iterator[Entry]:
        """Entries under *base* matching *filterstr*, read page by page.

        ``attributes`` None returns all user attributes; operational ones
        (``entryUUID``, ``modifyTimestamp``) come back when named. An empty
        sequence returns DNs only.
        """
        conn = self._connection()
        attrlist = None if attributes is None else (list(attributes) or ["1.1"])
        page = SimplePagedResultsControl(True, size=self.page_size, cookie=b"")
        ldap_scope = _SCOPES[Scope(scope)]
        decode = self._codec.decode if self._codec is not None else None

        def ask() -> int:
            return int(conn.search_ext(base, ldap_scope, filterstr, attrlist, serverctrls=[page]))

        ahead: int | None = self._searching(base, filterstr, ask)
        try:
            while ahead is not None:
                msgid, ahead = ahead, None
                _t, rdata, _m, rctrls = self._searching(
                    base, filterstr, partial(conn.result3, msgid, 1, self.timeout, resp_ctrl_classes=_PAGED)
                )
                cookie = next((c.cookie for c in rctrls if c.controlType == page.controlType), b"")
                if cookie:
                    # Ask for the next page now: the server prepares it while this one is handed out.
                    page.cookie = cookie
                    ahead = self._searching(base, filterstr, ask)
                for dn, attrs in rdata:
                    if dn is not None:  # None: a search reference (referrals are not chased)
                        if ";" in "".join(attrs):  # a ranged attribute (member;range=0-1499)
                            attrs = self._complete_ranges(conn, dn, attrs)
                        yield Entry(dn, EncodedAttrs(attrs, decode))
        finally:
            if ahead is not None:  # the caller stopped early: the page asked for is not wanted
                self._abandon(conn, ahead)

    def _searching(self, base: str, filterstr: str, call: Callable[[], _T]) -> _T:
        """*call* (a step of a search), with its errors said in the search's terms."""
        try:
            return call()
        except ldap.NO_SUCH_OBJECT as exc:
            raise NotFoundError(f"{self.url}: search base {base!r} does not exist") from exc
        except ldap.FILTER_ERROR as exc:
            raise ConfigError(f"LDAP filter {filterstr!r} is not valid (RFC 4515)") from exc
        except ldap.INVALID_DN_SYNTAX as exc:
            raise ConfigError(f"search base {base!r} is not a valid DN") from exc
        except ldap.LDAPError as exc:
            raise self._failed(exc, f"searching {base!r}") from exc

    def _abandon(self, conn: Any, msgid: int) -> None:
        try:
            conn.abandon_ext(msgid)
        except ldap.LDAPError:
            log.debug("abandoning search %s failed; dropping the connection", msgid)
            self._drop()

    def _complete_ranges(self, conn: Any, dn: str, attrs: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
        """*attrs* with ranged attributes (``member;range=0-1499``) read in full,
        by follow-up base searches of *dn* between two pages of the search."""

        def fetch(description: str) -> dict[str, list[bytes]]:
            try:
                found = conn.search_ext_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", [description], timeout=self.timeout)
            except ldap.LDAPError as exc:
                raise self._failed(exc, f"reading {description!r} of {dn!r}") from exc
            for found_dn, found_attrs in found:
                if found_dn is not None:
                    result: dict[str, list[bytes]] = found_attrs
                    return result
            return {}

        return complete_ranges(attrs, fetch, dn=dn)

    def schema(self) -> DirectorySchema | None:
        """The server's schema (read once per instance), or None when not published."""
        if not self._schema_read:
            conn = self._connection()
            try:
                sub = read_subschema(conn)
            except ldap.LDAPError as exc:
                raise self._failed(exc, "reading the schema") from exc
            self._schema = to_directory_schema(sub) if sub is not None else None
            self._matching = equality_rules(sub) if sub is not None else {}
            self._schema_read = True
        return self._schema

    def checks_values(self, attribute: str) -> bool:
        """True when a modify can delete values of *attribute* by value, so
        the values a change replaces can be named for the server to check.

        On a generic server: the attribute has an equality matching rule in
        the published schema (no schema: none is assumed). Active Directory
        publishes no matching rules but matches every syntax; only
        :data:`AD_REPLACED` are always replaced.
        """
        name = attribute.split(";", 1)[0].lower()
        if self.flavor == "active_directory":
            return name not in AD_REPLACED
        if self._matching is None:
            self.schema()
        return (self._matching or {}).get(name, False)

    def test(self) -> str:
        """Connect, bind and read the root DSE; return a one-line description."""
        conn = self._connection()
        try:
            found = conn.search_s("", ldap.SCOPE_BASE, "(objectClass=*)", ["*", "+"])
        except ldap.LDAPError as exc:
            raise self._failed(exc, "reading the root DSE") from exc
        root: Attrs = EncodedAttrs(found[0][1]) if found else Attrs()
        contexts = ", ".join(root.get_values("namingContexts")) or "none published"
        return (
            f"{self.url}: bound as {self.bind_dn or 'anonymous'}; vendor {_vendor(root)}; "
            f"naming contexts {contexts}"
        )

    # ------------------------------------------------------------ writing

    def apply(self, changes: Iterable[Change]) -> Iterator[ApplyOutcome]:
        """Apply *changes* pipelined, yielding one outcome per change as each completes."""
        conns = self._write_connections()
        finished = False
        try:
            yield from pipelined(conns, changes, self.window, self.timeout, self._codec or TEXT)
            finished = True
        except ldap.LDAPError as exc:
            raise connection_error(exc, self.url, "writing", tls=self._tls) from exc
        finally:
            if not finished:
                # An error, or a consumer that stopped early: results may still
                # be outstanding and would confuse the next call, so start afresh.
                self._drop()


def _unbind_quietly(conn: Any) -> None:
    try:
        conn.unbind_s()
    except ldap.LDAPError:
        log.debug("unbind failed; the connection is dropped anyway")


def _vendor(root: Attrs) -> str:
    name = root.first("vendorName")
    if name:
        version = root.first("vendorVersion")
        return f"{name} {version}" if version else name
    classes = {c.lower() for c in root.get_values("objectClass")}
    if "openldaprootdse" in classes:
        return "OpenLDAP"
    if "forestFunctionality" in root or "1.2.840.113556.1.4.800" in root.get_values("supportedCapabilities"):
        return "Active Directory"
    return "unknown"


def open_ldap_directory(definition: LdapStore, secrets: Mapping[str, str]) -> LdapDirectory:
    """The directory of an ``ldap`` store definition; ``secrets`` holds the resolved bind password."""
    password = secrets.get("bind_password")
    if definition.bind_dn and not password:
        raise ConfigError(
            f"store {definition.name!r}: bind_dn is set but no bind password was given; "
            "set bind_password (or env:NAME)"
        )
    fields = definition.model_fields_set
    return LdapDirectory(
        url=definition.url,
        bind_dn=definition.bind_dn,
        bind_password=password,
        start_tls=definition.start_tls,
        ca_file=definition.ca_file,
        tls_verify=definition.tls_verify,
        timeout=definition.timeout,
        page_size=definition.page_size if "page_size" in fields else settings.get_int("ldap_page_size"),
        window=settings.get_int("ldap_window"),
        flavor=definition.flavor,
        connections=write_connections(definition.url, settings.get("ldap_connections"), os.cpu_count()),
    )


def write_connections(url: str, setting: str, cpus: int | None) -> int:
    """How many connections a run spreads its writes to *url* over.

    ``auto`` (the default): one when the server is on this machine and the
    machine has at most two cores, else two. A second connection lets a
    server work on more writes at once; with slapd on a shared 2-core
    machine it gave no more writes a second (medians of three runs) and,
    until choosing between the two was made cheap, cost idsync about a tenth
    more CPU, taken from the server (see docs/performance.md). A number is
    taken as it is.
    """
    if setting.strip().lower() in ("", "auto"):
        host = urlsplit(url).hostname or ""
        local = host == "localhost" or _is_loopback(host)
        return 1 if local and (cpus or 1) <= 2 else 2
    try:
        return int(setting)
    except ValueError as exc:
        raise ConfigError(f"IDSYNC_LDAP_CONNECTIONS={setting!r} is not a whole number or auto") from exc


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False



def check_bind(definition: LdapStore, dn: str, password: str) -> bool:
    """Whether the server of *definition* accepts a simple bind as *dn* with
    *password*: how a directory user signs in to idsync.

    The store's own bind DN and password play no part. An empty password is
    refused here, never sent: a simple bind without one is an unauthenticated
    bind (RFC 4513, 5.1.2), which many servers accept for any DN. A server
    that cannot be reached raises its ConnectorError, so an outage is not
    mistaken for a wrong password.
    """
    if not password or not dn:
        return False
    directory = LdapDirectory(
        url=definition.url,
        bind_dn=dn,
        bind_password=password,
        start_tls=definition.start_tls,
        ca_file=definition.ca_file,
        tls_verify=definition.tls_verify,
        timeout=definition.timeout,
        connections=1,
    )
    try:
        directory._connection()
    except AuthError:
        return False
    finally:
        directory.close()
    return True
