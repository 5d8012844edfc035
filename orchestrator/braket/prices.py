"""The dated Braket price table: what a task costs on each device.

``braket.tracking.Tracker`` downloads AWS's price list at run time; there is no network on a
research laptop or a locked-down worker, so a dated table ships with the package and users
override it with their own file (``ORCHESTRATOR_PRICE_TABLE`` or an explicit path).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from core.errors import InputError

PRICE_TABLE_ENV = "ORCHESTRATOR_PRICE_TABLE"
_SHIPPED = "prices.yaml"

PriceKind = Literal["qpu", "simulator", "local"]


@dataclass(frozen=True)
class DevicePrice:
    """One rule of the table: the devices it matches and how they bill.

    Attributes:
        match: shell-style wildcard over the device ARN or ``local:*`` name.
        kind: ``qpu`` (per task + per shot), ``simulator`` (per minute, minimum) or ``local`` (free).
        per_task: USD per task (QPUs).
        per_shot: USD per shot (QPUs).
        per_minute: USD per minute of simulation (managed simulators).
        minimum_seconds: billed minimum per task (managed simulators).
    """

    match: str
    kind: PriceKind
    per_task: float = 0.0
    per_shot: float = 0.0
    per_minute: float = 0.0
    minimum_seconds: float = 0.0

    def cost(self, shots: int, seconds: float | None = None) -> float:
        """USD for one task of ``shots`` shots that simulated for ``seconds`` (simulators)."""
        # Rounded to a nano-dollar so that 0.075 * 3 / 60 reads 0.00375, not 0.0037499999999999994.
        if self.kind == "qpu":
            return round(self.per_task + self.per_shot * shots, 9)
        if self.kind == "simulator":
            billed = max(seconds or 0.0, self.minimum_seconds)
            return round(self.per_minute * billed / 60.0, 9)
        return 0.0


@dataclass(frozen=True)
class PriceTable:
    """An ordered list of price rules with the date they were checked.

    Attributes:
        as_of: ISO date the prices were checked.
        currency: always USD for Braket.
        source: where the prices came from (URL or file).
        path: the file this table was read from.
        rules: first matching rule wins.
    """

    as_of: str
    currency: str
    source: str
    path: str
    rules: tuple[DevicePrice, ...]

    @property
    def version(self) -> str:
        """A short label stored with every cost: ``<file name>@<date>``."""
        return f"{Path(self.path).name}@{self.as_of}"

    def price_for(self, device: str) -> DevicePrice:
        """The rule that prices ``device``.

        Raises:
            InputError: no rule matches; the message says which file to extend.
        """
        for rule in self.rules:
            if fnmatch.fnmatchcase(device, rule.match):
                return rule
        raise InputError(
            f"no price for device '{device}'; add a rule matching it to the price table "
            f"(or set {PRICE_TABLE_ENV} to a table that has one)",
            source=self.path,
        )

    def task_cost(self, device: str, shots: int, seconds: float | None = None) -> float:
        """USD for one task on ``device`` (see :meth:`DevicePrice.cost`)."""
        return self.price_for(device).cost(shots, seconds)


def load_price_table(path: str | Path | None = None) -> PriceTable:
    """Read a price table: ``path``, else ``$ORCHESTRATOR_PRICE_TABLE``, else the shipped one.

    Raises:
        InputError: the file is missing or malformed (with the field that is wrong).
    """
    chosen = path or os.environ.get(PRICE_TABLE_ENV) or None
    if chosen is None:
        return _shipped_table()
    return _read_table(Path(chosen))


@lru_cache(maxsize=1)
def _shipped_table() -> PriceTable:
    ref = resources.files(__package__).joinpath(_SHIPPED)
    with resources.as_file(ref) as file:
        return _read_table(Path(file))


def _read_table(path: Path) -> PriceTable:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError("price table file not found; fix the path", source=str(path)) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({exc})", source=str(path)) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("devices"), list):
        raise InputError("must be a mapping with a 'devices' list of price rules", source=str(path))
    for required in ("as_of", "currency"):
        if not raw.get(required):
            raise InputError(
                "missing; say when the prices were checked and in which currency",
                source=str(path),
                field=required,
            )
    rules = tuple(_rule(item, path, i) for i, item in enumerate(raw["devices"]))
    return PriceTable(
        as_of=str(raw["as_of"]),
        currency=str(raw["currency"]),
        source=str(raw.get("source", "")),
        path=str(path),
        rules=rules,
    )


_FIELDS = {"qpu": ("per_task", "per_shot"), "simulator": ("per_minute", "minimum_seconds"), "local": ()}


def _rule(item: Any, path: Path, index: int) -> DevicePrice:
    where = f"devices[{index}]"
    if not isinstance(item, dict) or "match" not in item or item.get("kind") not in _FIELDS:
        raise InputError(
            "each rule needs 'match' and 'kind' (qpu, simulator or local)", source=str(path), field=where
        )
    allowed = {"match", "kind", *_FIELDS[item["kind"]]}
    unknown = set(item) - allowed
    if unknown:
        raise InputError(
            f"unknown key(s) {sorted(unknown)} for kind '{item['kind']}'; allowed: {sorted(allowed)}",
            source=str(path),
            field=where,
        )
    values: dict[str, float] = {}
    for name in _FIELDS[item["kind"]]:
        value = item.get(name, 0.0)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise InputError("must be a number >= 0", source=str(path), field=f"{where}.{name}")
        values[name] = float(value)
    return DevicePrice(match=str(item["match"]), kind=item["kind"], **values)
