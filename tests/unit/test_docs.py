"""The reference documentation lists every transform step and every setting."""

from __future__ import annotations

from pathlib import Path

from idsync import settings
from idsync.engine.transforms import STEPS

REFERENCE = (Path(__file__).parents[2] / "docs" / "reference.md").read_text(encoding="utf-8")


def test_every_transform_step_is_documented() -> None:
    missing = [name for name in STEPS if f"| `{name}` |" not in REFERENCE]
    assert missing == []


def test_every_setting_is_documented() -> None:
    missing = [s.env_var for s in settings.SETTINGS if f"`{s.env_var}`" not in REFERENCE]
    assert missing == []
