"""The fields of the store and source forms, and the way between a posted
form and a definition's body.

A field is named by its dotted path in the body (``url``,
``notification_server.host``, ``workflow.escalation.after``), which is also
its input's name. Reading a form overlays the posted fields on the body the
edit started from, so settings the form does not show (a webhook, suffix
attributes) are kept. An empty field is no value (the default); an empty
secret field keeps the stored secret; a section whose fields are all empty
is no section (no notification server, no workflow, no escalation).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from idsync.portal.web import Form

FieldType = Literal["text", "number", "checkbox", "select", "secret", "list", "textarea"]


@dataclass(frozen=True)
class Field:
    """One input of a form."""

    path: str
    label: str
    type: FieldType = "text"
    options: tuple[str, ...] = ()
    help: str = ""
    default: Any = None
    """What the form shows when the body has no value (a checkbox's default)."""

    @property
    def id(self) -> str:
        return "f-" + self.path.replace(".", "-").replace("_", "-")


@dataclass(frozen=True)
class Section:
    """Fields shown together; *path* names an optional section of the body
    (removed when its fields are all empty), "" the top level."""

    title: str
    fields: tuple[Field, ...]
    path: str = ""
    help: str = ""


LDAP = Section("Connection", (
    Field("url", "URL", help="ldap://host:port or ldaps://host:port"),
    Field("bind_dn", "Bind DN"),
    Field("bind_password", "Bind password", "secret"),
    Field("base_dn", "Base DN"),
    Field("start_tls", "Use StartTLS", "checkbox", default=False),
    Field("tls_verify", "Verify the server's certificate", "checkbox", default=True),
    Field("ca_file", "CA certificates file (PEM)"),
    Field("timeout", "Timeout (seconds)", "number", default=10.0),
    Field("page_size", "Page size", "number", default=1000),
))
LOCAL = Section("Embedded directory", (
    Field("path", "Directory file", help="relative paths are under IDSYNC_HOME"),
    Field("suffix", "Suffix", default="dc=example,dc=org"),
))
NOTIFICATION = Section("Notification server", (
    Field("notification_server.host", "SMTP host", help="leave empty for no notification server"),
    Field("notification_server.port", "SMTP port", "number", help="default: 25, 587 (starttls) or 465 (implicit)"),
    Field("notification_server.tls", "TLS", "select", ("starttls", "implicit", "none"), default="starttls"),
    Field("notification_server.sender", "From address"),
    Field("notification_server.username", "SMTP user name"),
    Field("notification_server.password", "SMTP password", "secret"),
    Field("notification_server.default_to", "Default recipients", "list", help="comma-separated addresses"),
    Field("notification_server.allow_plaintext_login", "Allow a login without TLS", "checkbox", default=False),
), path="notification_server")
WORKFLOW = Section("Workflow: approvals", (
    Field("workflow.manual", "Manual runs need approval", "checkbox", default=False),
    Field("workflow.scheduled", "Scheduled runs need approval", "checkbox", default=False),
    Field("workflow.held", "Runs held by a safety limit become requests", "checkbox", default=False),
    Field("workflow.approvers", "Approvers (idsync users)", "list", help="comma-separated user names"),
    Field("workflow.approver_group", "Approver group (DN of a directory group of this store)"),
    Field("workflow.required_approvals", "Approvals needed", "number", default=1),
    Field("workflow.expires_after", "Requests expire after", default="7d", help="e.g. 7d, 12h"),
    Field("workflow.stale_after", "Plans are stale after", default="1d"),
    Field("workflow.escalation.after", "Escalate after", help="leave empty for no escalation"),
    Field("workflow.escalation.approvers", "Escalate to (idsync users)", "list"),
    Field("workflow.escalation.approver_group", "Escalate to group (DN)"),
), path="workflow")
SQL = Section("Database", (
    Field("url", "SQLAlchemy URL (without the password)", help="e.g. postgresql+psycopg://user@host/db"),
    Field("password", "Password", "secret"),
    Field("table", "Table or view", help="give a table or a query"),
    Field("query", "Query (one SELECT)", "textarea"),
    Field("schema", "Schema of the table"),
    Field("batch_size", "Rows per round trip", "number", default=1000),
))
CSV = Section("File", (
    Field("path", "File"),
    Field("delimiter", "Delimiter", default=",", help="one character, or tab"),
    Field("quotechar", "Quote character", default='"'),
    Field("encoding", "Encoding", default="utf-8"),
    Field("header", "The first line names the columns", "checkbox", default=True),
    Field("fields", "Column names (without a header line)", "list"),
))
EXCEL = Section("Workbook", (
    Field("path", "File (.xlsx)"),
    Field("sheet", "Sheet", help="default: the first sheet"),
    Field("header_row", "Header row", "number", default=1, help="0: no header row, give the column names"),
    Field("fields", "Column names (without a header row)", "list"),
))

STORE_KINDS: dict[str, tuple[str, tuple[Section, ...]]] = {
    "ldap": ("LDAP directory", (LDAP, NOTIFICATION, WORKFLOW)),
    "activedirectory": ("Active Directory", (LDAP, NOTIFICATION, WORKFLOW)),
    "local": ("Embedded directory", (LOCAL, NOTIFICATION, WORKFLOW)),
}
SOURCE_KINDS: dict[str, tuple[str, tuple[Section, ...]]] = {
    "csv": ("CSV file", (CSV,)),
    "excel": ("Excel workbook", (EXCEL,)),
    "sql": ("SQL database", (SQL,)),
}


def form_kind(section: str, body: dict[str, Any]) -> str:
    """The form a stored body is edited with (an ldap store of the AD flavour: activedirectory)."""
    kind = str(body.get("kind", ""))
    if section == "stores" and kind == "ldap" and body.get("flavor") == "active_directory":
        return "activedirectory"
    return kind


def body_kind(kind: str) -> dict[str, Any]:
    """The body fields a form kind fixes."""
    if kind == "activedirectory":
        return {"kind": "ldap", "flavor": "active_directory"}
    return {"kind": kind}


def get_path(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body


def put(body: dict[str, Any], path: str, value: Any) -> None:
    """Set *path* in *body*, making its sections; None removes it."""
    *sections, last = path.split(".")
    node = body
    for part in sections:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


def shown(field: Field, body: dict[str, Any]) -> Any:
    """The value a field shows: the body's, else its default; never a secret."""
    if field.type == "secret":
        return ""
    value = get_path(body, field.path)
    if value is None:
        value = field.default
    if field.type == "list":
        return ", ".join(str(v) for v in value or [])
    if field.type == "checkbox":
        return bool(value)
    return "" if value is None else value


def split_list(text: str) -> list[str]:
    return [item.strip() for line in text.splitlines() for item in line.split(",") if item.strip()]


def read_value(field: Field, form: Form) -> Any:
    """The posted value of *field*: None for an empty one."""
    if field.type == "checkbox":
        return form.get(field.path) == "yes"
    raw = form.get(field.path)
    if field.type == "list":
        return split_list(raw) or None
    text = raw if field.type == "textarea" else raw.strip()
    return text if text.strip() else None


def _given(field: Field, value: Any) -> bool:
    """Whether a posted value asks for its section: a ticked box, or a text
    without a default (a default is shown even when the section is absent)."""
    if field.type == "checkbox":
        return bool(value)
    return value is not None and field.type != "secret" and field.default is None


def read_body(form: Form, sections: tuple[Section, ...], start: dict[str, Any]) -> dict[str, Any]:
    """*start* with the posted fields of *sections* overlaid."""
    body = copy.deepcopy(start)
    for section in sections:
        values = {f.path: read_value(f, form) for f in section.fields}
        if section.path and not any(_given(f, values[f.path]) for f in section.fields):
            put(body, section.path, None)  # nothing given: no such section
            continue
        for field in section.fields:
            value = values[field.path]
            if field.type == "secret" and value is None:
                continue  # write-only: empty keeps the stored secret
            if field.type == "checkbox" and value == bool(field.default) and get_path(body, field.path) is None:
                continue
            put(body, field.path, value)
        if section.path == "workflow" and get_path(body, "workflow.escalation.after") is None:
            put(body, "workflow.escalation", None)
    return body
