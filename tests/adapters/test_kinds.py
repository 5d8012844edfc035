"""The registry of adapter kinds agrees with the kinds the sweep file accepts."""

from __future__ import annotations

from typing import get_args

from adapters.kinds import ADAPTERS, KINDS
from core.project import Kind, ProjectSpec


def test_every_kind_of_the_sweep_file_has_one_adapter() -> None:
    assert set(get_args(Kind)) - {"auto"} == set(KINDS)
    assert len(KINDS) == len(ADAPTERS), "two adapters declare the same kind"


def test_each_options_block_is_a_field_of_the_project_spec() -> None:
    for cls in ADAPTERS:
        assert cls.options_field is None or cls.options_field in ProjectSpec.model_fields, cls
