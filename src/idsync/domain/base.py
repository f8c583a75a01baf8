"""What every definition model shares: immutability, strict fields, and names."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")]
"""The name of a definition, a user or a token: letters, digits, space, ``_ . -``."""


class DefinitionModel(BaseModel):
    """Base of every definition model: immutable, and unknown fields are refused
    (a typo in a YAML key is an error, never silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
