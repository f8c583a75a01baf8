"""The demo workspace: sample people, an embedded directory and a job.

Everything is generated deterministically (same seed, same file) so a demo
run can be compared with another. A few rows are broken on purpose, to show
that a bad record fails alone and the run goes on.
"""

from __future__ import annotations

import csv
import random
import shutil
import unicodedata
from pathlib import Path

from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs
from idsync.domain.roles import Role
from idsync.errors import ConfigError
from idsync.services import connections, users
from idsync.services.workspace import Workspace

MARKER = ".idsync-demo"
SUFFIX = "dc=example,dc=org"
CONTAINER = f"ou=People,{SUFFIX}"

FIRST = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
         "Radia", "John", "Sophie", "Tim", "Hedy", "Linus", "Guido", "Anita", "Niklaus", "Leslie", "Zoë", "José")
LAST = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
        "Ritchie", "Perlman", "McCarthy", "Wilson", "Berners-Lee", "Lamarr", "Torvalds", "van Rossum", "Borg",
        "Wirth", "Lamport", "O'Neil", "Núñez")
DEPARTMENTS = ("Engineering", "Finance", "HR", "Sales", "Support", "Legal")
TITLES = ("Engineer", "Analyst", "Manager", "Specialist", "Director", "Associate")
BROKEN_ROWS = 5
"""The rows :func:`write_people` breaks on purpose, written last."""
COLUMNS = ("EmployeeID", "FirstName", "LastName", "Email", "Department", "Title", "Phones")


def prepare(path: Path) -> Path:
    """A fresh demo workspace at *path*: an earlier demo's workspace is replaced,
    any other existing folder is refused (nothing of the user's is ever deleted)."""
    path = path.expanduser().resolve()
    if path.exists():
        if not (path / MARKER).exists() and any(path.iterdir()):
            raise ConfigError(f"{path} exists and is not a demo workspace", field="workspace", hint="choose another folder")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / MARKER).write_text("created by `idsync demo`; safe to delete\n", encoding="utf-8")
    return path


def _ascii(text: str) -> str:
    """Mail addresses are IA5 (ASCII) in LDAP: Zoë becomes zoe."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def write_people(path: Path, count: int, seed: int = 7) -> int:
    """Write *count* people as CSV (plus a few broken rows); returns how many rows are broken."""
    rng = random.Random(seed)
    rows: list[list[str]] = []
    for i in range(1, count + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        uid = f"E{i:05d}"
        phones = ";".join(f"+1 555 {rng.randrange(1000, 9999)}" for _ in range(rng.choice((1, 1, 2))))
        email = _ascii(f"{first}.{last}.{i}@example.org".lower().replace(" ", "").replace("'", ""))
        rows.append([uid, first, last, email, rng.choice(DEPARTMENTS), rng.choice(TITLES), phones])
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
        # The broken rows: a short row, an empty key, a duplicate key, an unknown department.
        out.write("E90001,Short,Row\r\n")
        writer.writerow(["", "No", "Key", "nokey@example.org", "HR", "Clerk", ""])
        writer.writerow([rows[0][0], "Dup", "Licate", "dup@example.org", "HR", "Clerk", ""])
        writer.writerow(["E90002", "Nobody", "Knows", "nobody@example.org", "Marketing", "Clerk", ""])
    with path.open("ab") as raw:
        raw.write(b"E90003,Bad,Bytes\xff\xfe,bad@example.org,HR,Clerk,\r\n")
    return BROKEN_ROWS


def definitions_yaml(workspace: Path) -> str:
    """The demo's store, source and job, as a user would write them."""
    return f"""\
# The demo's definitions: apply your own with `idsync apply -f FILE`.
stores:
  - name: demo-directory
    kind: local
    description: The embedded directory of the demo
    path: {workspace / 'directory.db'}
    suffix: {SUFFIX}
sources:
  - name: hr-export
    kind: csv
    description: People exported from the HR system
    path: {workspace / 'people.csv'}
jobs:
  - name: hr-to-directory
    description: People from the HR export become inetOrgPerson entries
    source: hr-export
    destination:
      store: demo-directory
      container: {CONTAINER}
      object_type: user
      rdn_attribute: uid
    mappings:
      - {{attribute: uid, from: EmployeeID, key: true}}
      - {{attribute: givenName, from: FirstName, transforms: [trim]}}
      - {{attribute: sn, from: LastName, transforms: [trim]}}
      - {{attribute: cn, join: {{fields: [FirstName, LastName], separator: " "}}}}
      - {{attribute: displayName, expression: "source['LastName'].upper() + ', ' + source['FirstName']"}}
      - {{attribute: mail, from: Email, transforms: [trim, lower]}}
      - attribute: departmentNumber
        from: Department
        transforms:
          - lookup:
              table: {{Engineering: "100", Finance: "200", HR: "300", Sales: "400", Support: "500", Legal: "600"}}
      - {{attribute: title, from: Title}}
      - {{attribute: telephoneNumber, from: Phones, multi_value_delimiter: ";"}}
      - {{attribute: description, value: "Synchronized by %JOBNAME%", new_only: true}}
    actions:
      on_new: create
      on_missing: delete
"""


def ensure_container(ws: Workspace, store: str, dn: str = CONTAINER) -> None:
    """Create the demo's ou=People container if it is not there yet."""
    with connections.directory(ws, store) as directory:
        attrs = Attrs({"objectClass": ("top", "organizationalUnit"), "ou": (dn.split(",")[0].split("=")[1],)})
        for outcome in directory.apply([Change(ChangeOp.CREATE, dn, attrs=attrs)]):
            if outcome.error and "exist" not in outcome.error.message.lower():
                raise outcome.error


# ---------------------------------------------------------------- approvals

COLLECTION = "hr-nightly"
SCHEDULE = "nightly"
APPROVER = "ada"
ADMIN = "demo-admin"
HIRES = (("E80001", "Katherine", "Johnson", "Engineering"), ("E80002", "Mary", "Jackson", "Engineering"),
         ("E80003", "Dorothy", "Vaughan", "Finance"))
LEAVERS = 2


def approvals_yaml(workspace: Path) -> str:
    """The second half of the demo: the store requires approval; a collection
    on a nightly schedule, with notifications and preview on."""
    return f"""\
# Approvals: runs of collections writing to demo-directory wait for ada.
stores:
  - name: demo-directory
    kind: local
    description: The embedded directory of the demo
    path: {workspace / 'directory.db'}
    suffix: {SUFFIX}
    notification_server:
      host: 127.0.0.1
      port: 2525          # nothing listens: the demo's messages wait in the outbox
      tls: none
      sender: idsync@example.org
    workflow:
      manual: true
      scheduled: true
      approvers: [{APPROVER}]
      expires_after: 3d
schedules:
  - name: {SCHEDULE}
    description: Every night at two
    triggers:
      - {{kind: daily, start: "2027-01-04T02:00"}}
collections:
  - name: {COLLECTION}
    description: The HR export, every night, after approval
    jobs: [hr-to-directory]
    schedule: {SCHEDULE}
    preview_when_finished: true
    notifications:
      enabled: true
      recipients: [hr-team@example.org]
      triggers: [always]
"""


def add_people(ws: Workspace, account: str) -> None:
    """The demo's administrator (mapped to *account*, the one running the
    demo) and its approver, who has an email address."""
    users.add_user(ws, ADMIN, display_name="Demo administrator", os_user=account, roles=(Role.ADMIN, Role.OPERATOR))
    users.add_user(ws, APPROVER, display_name="Ada Lovelace", email="ada@example.org", roles=(Role.APPROVER,))


def change_people(path: Path) -> None:
    """The next HR export: three people hired, the first two of the list gone,
    and the broken rows fixed (an export with unreadable rows never deletes)."""
    lines = path.read_bytes().splitlines(keepends=True)
    header, rows = lines[0], lines[1:-BROKEN_ROWS]
    hires = b"".join(
        f"{uid},{first},{last},{first.lower()}.{last.lower()}@example.org,{department},Engineer,+1 555 0100\r\n".encode()
        for uid, first, last, department in HIRES
    )
    path.write_bytes(header + b"".join(rows[LEAVERS:]) + hires)
