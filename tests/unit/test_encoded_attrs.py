"""Attributes decoded on first read behave exactly like attributes decoded up front."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idsync.domain.entry import Attrs, EncodedAttrs

names = st.sampled_from(["cn", "sn", "givenName", "mail", "member", "objectGUID", "jpegPhoto"])
values = st.lists(st.binary(max_size=8) | st.text(max_size=6).map(str.encode), max_size=3)
raws = st.dictionaries(names, values, max_size=5)
asked = st.lists(st.sampled_from(["cn", "CN", "givenname", "GIVENNAME", "mail", "uid", "objectguid", "jpegPhoto"]))


def upfront(raw: dict[str, list[bytes]], decode: object = None) -> Attrs:
    if decode is None:
        return Attrs.from_unique({n: [v.decode("utf-8", "surrogateescape") for v in vals] for n, vals in raw.items()})
    return Attrs.from_unique({n: [decode(n, v) for v in vals] for n, vals in raw.items()})  # type: ignore[operator]


def hexed(name: str, value: bytes) -> str:
    return value.hex() if name == "objectGUID" else value.decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("decode", [None, hexed])
@given(raw=raws, wanted=asked)
def test_reads_agree_with_decoding_everything(decode: object, raw: dict[str, list[bytes]], wanted: list[str]) -> None:
    lazy, eager = EncodedAttrs(raw, decode), upfront(raw, decode)  # type: ignore[arg-type]
    assert lazy.values_of(wanted) == eager.values_of(wanted) == [eager.get_values(n) for n in wanted]
    for name in wanted:
        assert lazy.get_values(name) == eager.get_values(name)
        assert lazy.first(name) == eager.first(name)
        assert (name in lazy) == (name in eager)
        if name in eager:
            assert lazy[name] == eager[name]
        else:
            with pytest.raises(KeyError):
                lazy[name]
    # Walking the whole mapping decodes everything, with the directory's spelling.
    assert lazy == eager and dict(lazy.items()) == dict(eager.items())
    assert list(lazy) == list(raw) and len(lazy) == len(raw)
    assert lazy.to_dict() == eager.to_dict() and hash(lazy) == hash(eager)


def test_binary_values_survive_a_round_trip() -> None:
    lazy = EncodedAttrs({"jpegPhoto": [b"\xff\xd8\x00binary"]})
    (text,) = lazy.get_values("JPEGPHOTO")
    assert text.encode("utf-8", "surrogateescape") == b"\xff\xd8\x00binary"


def test_the_decoder_gets_the_name_as_the_directory_spelled_it() -> None:
    seen: list[str] = []

    def decode(name: str, value: bytes) -> str:
        seen.append(name)
        return value.decode()

    lazy = EncodedAttrs({"objectGUID": [b"x"]}, decode)
    assert lazy.get_values("objectguid") == ("x",) and lazy.values_of(["OBJECTGUID"]) == [("x",)]
    assert seen == ["objectGUID", "objectGUID"]
