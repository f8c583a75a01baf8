"""Passwords of new objects: the generator's rules, and the writer that adds
them to creates on their way to the directory and nowhere else."""

from __future__ import annotations

import random
import string
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from idsync.connectors.base import ApplyOutcome
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.definitions import DEFAULT_SYMBOLS, PasswordRules, Passwords
from idsync.domain.entry import Attrs
from idsync.engine.passwords import GeneratedPassword, PasswordWriter, alphabets, generate_password
from idsync.errors import ConfigError, RecordError

rules_strategy = st.builds(
    lambda length, flags, symbol_set: PasswordRules(
        length=length, lower=flags[0], upper=flags[1], digits=flags[2], symbols=flags[3], symbol_set=symbol_set
    ),
    st.integers(min_value=8, max_value=128),
    st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()).filter(any),
    st.sampled_from([DEFAULT_SYMBOLS, "!", "-_", "@@##"]),
)


@settings(max_examples=300)
@given(rules_strategy, st.integers(min_value=0, max_value=2**32))
def test_generated_passwords_follow_their_rules(rules: PasswordRules, seed: int) -> None:
    password = generate_password(rules, random.Random(seed).randrange)
    assert len(password) == rules.length
    classes = alphabets(rules)
    allowed = set("".join(classes))
    assert set(password) <= allowed
    for cls in classes:
        assert any(c in cls for c in password), (cls, password)
    if not rules.symbols:
        assert not set(password) & set(DEFAULT_SYMBOLS)


def test_the_generator_draws_from_secrets_by_default() -> None:
    rules = PasswordRules()
    passwords = {generate_password(rules) for _ in range(200)}
    assert len(passwords) == 200  # 16 characters of ~90: a repeat would mean no randomness


def test_the_randomness_source_decides_everything() -> None:
    rules = PasswordRules(length=20)
    assert generate_password(rules, random.Random(7).randrange) == generate_password(rules, random.Random(7).randrange)


def test_classes_are_spread_over_all_positions() -> None:
    # The guaranteed characters are shuffled in: the first character is not always lower case.
    rules = PasswordRules(length=8)
    firsts = {generate_password(rules, random.Random(i).randrange)[0] for i in range(200)}
    assert firsts & set(string.ascii_uppercase) and firsts & set(string.digits)


def test_rules_are_validated() -> None:
    with pytest.raises(ValidationError, match="at least one of"):
        PasswordRules(lower=False, upper=False, digits=False, symbols=False)
    with pytest.raises(ValidationError):
        PasswordRules(length=7)
    with pytest.raises(ValidationError):
        PasswordRules(length=129)
    with pytest.raises(ValidationError, match="visible characters"):
        PasswordRules(symbol_set="! ")
    with pytest.raises(ValidationError, match="not both"):
        Passwords(fixed="x", generate=PasswordRules())
    with pytest.raises(ValidationError, match="recipients"):
        Passwords(fixed="x", recipients=["a@example.org"])
    with pytest.raises(ValidationError):
        Passwords(generate=PasswordRules(), recipients=["not an address"])


# ---------------------------------------------------------------- the writer


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[GeneratedPassword]] = []

    def __call__(self, items: Sequence[GeneratedPassword]) -> None:
        self.batches.append(list(items))

    @property
    def items(self) -> list[GeneratedPassword]:
        return [p for batch in self.batches for p in batch]


def create(dn: str, key: str) -> Change:
    return Change(ChangeOp.CREATE, dn, key=key, attrs=Attrs({"objectClass": ["inetOrgPerson"], "uid": [key]}))


def test_creates_get_a_password_other_changes_do_not() -> None:
    sink = Sink()
    writer = PasswordWriter(Passwords(generate=PasswordRules(length=12)), sink)
    planned = create("uid=1,ou=p", "1")
    sent = writer.before(planned)
    password = sent.attrs.first("userPassword") if sent.attrs else None
    assert password is not None and len(password) == 12
    assert planned.attrs is not None and "userPassword" not in planned.attrs  # the plan's change is untouched
    update = Change(ChangeOp.UPDATE, "uid=2,ou=p", key="2", mods=(Modification(ModOp.REPLACE, "sn", ("x",)),))
    assert writer.before(update) is update

    outcome = writer.after(ApplyOutcome(sent))
    assert outcome.change is planned  # the rest of the run sees the change without its password
    writer.flush()
    assert sink.items == [GeneratedPassword("uid=1,ou=p", "1", password)]
    assert password not in repr(sink.items[0])


def test_a_failed_create_forgets_its_password_and_never_shows_it() -> None:
    sink = Sink()
    writer = PasswordWriter(Passwords(generate=PasswordRules()), sink)
    sent = writer.before(create("uid=1,ou=p", "1"))
    password = sent.attrs.first("userPassword") if sent.attrs else ""
    assert password
    echoed = RecordError(f"add uid=1,ou=p failed: password {password} is too weak", key="1")
    outcome = writer.after(ApplyOutcome(sent, echoed))
    writer.flush()
    assert sink.items == []
    assert outcome.error is not None and password not in outcome.error.message
    assert "********" in outcome.error.message and outcome.error.key == "1"
    assert outcome.change.attrs is not None and "userPassword" not in outcome.change.attrs


def test_a_fixed_password_is_written_and_not_kept_for_delivery() -> None:
    sink = Sink()
    writer = PasswordWriter(Passwords(attribute="userPassword", fixed="ignored-here"), sink, fixed="Welcome-2024!")
    sent = writer.before(create("uid=1,ou=p", "1"))
    assert sent.attrs is not None and sent.attrs.get_values("userpassword") == ("Welcome-2024!",)
    writer.after(ApplyOutcome(sent))
    writer.flush()
    assert sink.items == [] and writer.written == 1


def test_passwords_are_handed_over_in_batches() -> None:
    sink = Sink()
    writer = PasswordWriter(Passwords(generate=PasswordRules()), sink, batch_size=2)
    sent = [writer.before(create(f"uid={i},ou=p", str(i))) for i in range(5)]
    for change in reversed(sent):  # outcomes may come back in any order
        writer.after(ApplyOutcome(change))
    assert [len(b) for b in sink.batches] == [2, 2]
    writer.flush()
    assert [len(b) for b in sink.batches] == [2, 2, 1]
    assert sorted(p.key for p in sink.items) == ["0", "1", "2", "3", "4"]


def test_an_outcome_reported_with_a_copy_of_the_change_is_still_matched() -> None:
    sink = Sink()
    writer = PasswordWriter(Passwords(generate=PasswordRules()), sink)
    sent = writer.before(create("uid=1,ou=p", "1"))
    copy = Change(sent.op, sent.dn, key=sent.key, attrs=sent.attrs)
    outcome = writer.after(ApplyOutcome(copy))
    writer.flush()
    assert len(sink.items) == 1 and outcome.change.attrs is not None and "userPassword" not in outcome.change.attrs


def test_a_writer_needs_a_password_source() -> None:
    with pytest.raises(ConfigError, match="neither a fixed password nor generate"):
        PasswordWriter(Passwords(), Sink())
