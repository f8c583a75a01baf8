"""Passwords of the objects a job creates.

Two pieces, both kept out of the plan:

- :func:`generate_password` draws one password by the job's rules (length,
  character classes) from the operating system's CSPRNG (``secrets``). The
  randomness source is a parameter, so tests can drive it; nothing else here
  touches the outside world.
- :class:`PasswordWriter` adds the password to each create *just before* the
  directory gets it. The planner never sees a password, so the stored plan,
  a later ``job run --plan``, plan exports and logs cannot contain one. A
  generated password whose create succeeded is handed to a sink (the service
  layer stores it encrypted until it is delivered); a failed create's
  password is forgotten, and removed from the error message if a server
  echoed it.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from idsync.connectors.base import ApplyOutcome
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.definitions import PasswordRules, Passwords
from idsync.domain.entry import Attrs
from idsync.errors import ConfigError, RecordError

RandBelow = Callable[[int], int]
"""``randbelow(n)``: a uniformly random int in ``[0, n)``."""

REDACTED = "********"


def alphabets(rules: PasswordRules) -> list[str]:
    """The character classes the rules ask for, each without repeats, in a fixed order."""
    classes = []
    if rules.lower:
        classes.append(string.ascii_lowercase)
    if rules.upper:
        classes.append(string.ascii_uppercase)
    if rules.digits:
        classes.append(string.digits)
    if rules.symbols:
        classes.append("".join(dict.fromkeys(rules.symbol_set)))
    return classes


def generate_password(rules: PasswordRules, randbelow: RandBelow = secrets.randbelow) -> str:
    """A password of ``rules.length`` characters with at least one of each
    enabled class; the other characters are drawn from all classes together,
    then the whole is shuffled (Fisher-Yates), so no position reveals a class."""
    classes = alphabets(rules)
    if rules.length < len(classes):
        raise ConfigError(f"a password of {rules.length} characters cannot hold {len(classes)} classes")
    pool = "".join(dict.fromkeys("".join(classes)))
    chars = [cls[randbelow(len(cls))] for cls in classes]
    chars += [pool[randbelow(len(pool))] for _ in range(rules.length - len(classes))]
    for i in range(len(chars) - 1, 0, -1):
        j = randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class GeneratedPassword:
    """A generated password of an object that was created, to be delivered."""

    dn: str
    key: str
    password: str

    def __repr__(self) -> str:
        return f"GeneratedPassword(dn={self.dn!r}, key={self.key!r}, password={REDACTED!r})"


PasswordSink = Callable[[Sequence[GeneratedPassword]], None]


@dataclass(slots=True)
class _InFlight:
    original: Change
    sent: Change
    password: str


class PasswordWriter:
    """An apply step (see :mod:`idsync.engine.runner`): gives every create its
    password on the way to the directory and reports generated ones that
    were written to *sink*, in batches of *batch_size*.

    *fixed* is the fixed password itself (its secret already resolved), or
    None when the job generates them.
    """

    def __init__(
        self,
        spec: Passwords,
        sink: PasswordSink,
        *,
        fixed: str | None = None,
        batch_size: int = 100,
        randbelow: RandBelow = secrets.randbelow,
    ) -> None:
        if fixed is None and spec.generate is None:
            raise ConfigError(
                "passwords: neither a fixed password nor generate rules are set; "
                "give passwords.fixed (a secret or env:NAME) or passwords.generate"
            )
        self.spec = spec
        self._fixed = fixed if spec.generate is None else None
        self._sink = sink
        self._batch_size = batch_size
        self._randbelow = randbelow
        self._in_flight: dict[int, _InFlight] = {}
        self._ready: list[GeneratedPassword] = []
        self.written = 0

    def before(self, change: Change) -> Change:
        """*change* with the password added when it creates an object."""
        if change.op is not ChangeOp.CREATE:
            return change
        if self._fixed is not None:
            password = self._fixed
        else:
            assert self.spec.generate is not None
            password = generate_password(self.spec.generate, self._randbelow)
        attrs = change.attrs or Attrs()
        kept = [(name, values) for name, values in attrs.items() if name.lower() != self.spec.attribute.lower()]
        sent = replace(change, attrs=Attrs([*kept, (self.spec.attribute, (password,))]))
        self._in_flight[id(sent)] = _InFlight(change, sent, password)
        return sent

    def after(self, outcome: ApplyOutcome) -> ApplyOutcome:
        """The outcome as the rest of the run may see it: the change without
        its password, the error message without it."""
        flight = self._in_flight.pop(id(outcome.change), None)
        if flight is None:
            flight = self._find(outcome.change)
        if flight is None:
            return outcome
        error = outcome.error
        if error is None:
            self.written += 1
            if self._fixed is None:
                self._ready.append(GeneratedPassword(flight.original.dn, flight.original.key, flight.password))
                if len(self._ready) >= self._batch_size:
                    self.flush()
            return ApplyOutcome(flight.original)
        if flight.password in error.message:
            error = RecordError(
                error.message.replace(flight.password, REDACTED),
                key=error.key,
                attribute=error.attribute,
                line=error.line,
            )
        return ApplyOutcome(flight.original, error)

    def _find(self, change: Change) -> _InFlight | None:
        """The create a directory reported with a copy of the change (matched by DN)."""
        if change.op is not ChangeOp.CREATE:
            return None
        for ident, flight in self._in_flight.items():
            if flight.sent.dn == change.dn:
                return self._in_flight.pop(ident)
        return None

    def flush(self) -> None:
        """Hand the generated passwords of created objects to the sink."""
        if self._ready:
            ready, self._ready = self._ready, []
            self._sink(ready)
