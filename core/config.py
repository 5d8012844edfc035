"""The sweep file: ``SweepConfiguration`` and its YAML loader.

Layers: global settings (:mod:`core.settings`) -> project settings (an optional
``orchestrator-project.yaml`` in the project folder) -> the sweep file. Errors name the file,
the line, the field path and the fix.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core import safe_yaml
from core.config_errors import explain
from core.errors import InputError
from core.expectations import Expectation
from core.expressions import Expression
from core.optimizer_config import OptimizerConfig
from core.project import FIDELITY, ProjectSpec
from core.settings import Budget
from core.space import MAX_SWEEP_POINTS, ParameterRange, ParameterSpace, coerce_range

PROJECT_SETTINGS_FILE = "orchestrator-project.yaml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")


class Objective(BaseModel):
    """A metric to optimise: ``{metric: fidelity, goal: maximize}`` or just ``fidelity``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    goal: Literal["maximize", "minimize"] = "maximize"
    weight: float = Field(1.0, gt=0, description="weight in the scalarised objective")


class Constraints(BaseModel):
    """``parameters``: expressions over parameters that filter the grid (``beta <= gamma``).
    ``metrics``: thresholds a result must meet to count as feasible (``fidelity >= 0.9``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parameters: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)

    @field_validator("parameters", "metrics")
    @classmethod
    def _parse(cls, exprs: list[str]) -> list[str]:
        for text in exprs:
            Expression(text)  # raises ValueError with the reason
        return exprs


def non_finite(data: Any, loc: tuple[str | int, ...] = ()) -> tuple[tuple[str | int, ...], float] | None:
    """Where the first infinite or NaN number in ``data`` (a sweep file's mapping) is, and what.

    Every number of a sweep file must be finite, in typed fields and free ones (``fixed``, value
    lists) alike: an infinite budget cannot be reserved against, and NaN is not JSON.
    """
    if isinstance(data, float) and not math.isfinite(data):
        return loc, data
    if isinstance(data, Mapping):
        items: Any = ((str(k), v) for k, v in data.items())
    elif isinstance(data, (list, tuple)):
        items = enumerate(data)
    else:
        return None
    for key, value in items:
        if (found := non_finite(value, (*loc, key))) is not None:
            return found
    return None


def _refuse_non_finite(data: Any, source: str, root: yaml.Node | None) -> None:
    if (found := non_finite(data)) is not None:
        loc, value = found
        raise InputError(
            f"{value} is not a finite number",
            source=source,
            field=_field_path(loc) or None,
            line=_line_of(root, loc),
            fix="give a finite number" + (" (for no limit, leave the field out)" if value > 0 else ""),
        )


class SweepConfiguration(BaseModel):
    """A parameter sweep over one or more projects (the seed's fields, typed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        """Built from Python (``SweepConfiguration(...)``) as from a file: no inf or NaN anywhere."""
        if (found := non_finite(data)) is not None:
            loc, value = found
            raise ValueError(f"{_field_path(loc)} is {value}, not a finite number; give a finite number")
        return data

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    projects: list[ProjectSpec] = Field(min_length=1)
    parameters: dict[str, ParameterRange] = Field(min_length=1)
    objectives: list[Objective] = Field(default_factory=list)
    constraints: Constraints = Field(default_factory=Constraints)
    budget_limit: Budget | None = Field(None, description="USD")
    max_duration: timedelta | None = None
    max_experiments: int | None = Field(
        None,
        ge=1,
        description="run at most this many experiments (reused "
        "results do not count); adaptive: the most promising",
    )
    adaptive_sampling: bool = True
    cross_project_analysis: bool = False
    repeats: int = Field(1, ge=1)
    seed: int = 0
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    validation: dict[str, Expectation] = Field(
        default_factory=dict, description="metric -> what it must be (see core.expectations)"
    )

    @field_validator("parameters", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: coerce_range(v) for k, v in value.items()}
        return value

    @field_validator("objectives", mode="before")
    @classmethod
    def _objective_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"metric": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("max_duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.startswith("P"):  # ISO 8601 ("PT2H") goes to pydantic
            match = _DURATION.match(value)
            if not match:
                raise ValueError("use seconds or a number with s/m/h/d, e.g. '90s', '30m', '2h'")
            unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2) or "s"]
            return timedelta(seconds=float(match.group(1)) * unit)
        return value

    @field_validator("max_duration")
    @classmethod
    def _positive_duration(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value.total_seconds() <= 0:
            raise ValueError("max_duration must be positive, e.g. '90s', '30m', '2h'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfiguration:
        names = [p.name for p in self.projects]
        if len(set(names)) != len(names):
            raise ValueError("project names must be unique")
        for text in self.constraints.parameters:
            unknown = Expression(text).names - set(self.parameters)
            if unknown:
                raise ValueError(
                    f"constraint '{text}' names unknown parameter(s) {sorted(unknown)}; "
                    f"parameters are {sorted(self.parameters)}"
                )
        if self.cross_project_analysis and len(self.projects) < 2:
            raise ValueError("cross_project_analysis needs at least two projects")
        return self

    def theory_errors(self) -> list[tuple[str, str]]:
        """``(field, problem)`` for each theory expression naming a name that is not a parameter."""
        known = set(self.parameters)
        return [
            (
                f"validation.{metric}.theory",
                f"theory '{e.theory}' names {sorted(unknown)}, which are not parameters of the sweep; "
                f"a theory is an expression over the parameters {sorted(known)}",
            )
            for metric, e in self.validation.items()
            if e.theory is not None and (unknown := Expression(e.theory).names - known)
        ]

    # -- derived -------------------------------------------------------------------------------

    def space(self) -> ParameterSpace:
        constraints = [Expression(t) for t in self.constraints.parameters]
        return ParameterSpace(dict(self.parameters), constraints, seed=self.seed)

    def canonical_json(self) -> str:
        data = self.model_dump(mode="json")
        # Fields added after sweep ids were first given out are left out at their defaults, so a
        # sweep file written before them keeps its id (and its results).
        if not data["validation"]:
            del data["validation"]
        if not data["optimizer"].get("fit_violations"):
            data["optimizer"].pop("fit_violations", None)
        for project in data["projects"]:
            if not project.get("rename"):
                project.pop("rename", None)
            project.pop("device_choice", None)  # device: auto's choice is stored state, not the request
            for rung in project.get("fidelities") or ():
                rung.pop("calibration", None)  # so is noise: device's calibration snapshot
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def sweep_id(self) -> str:
        """Stable id: the same sweep file gives the same sweep, so a rerun reuses its results."""
        digest = hashlib.sha256(self.canonical_json().encode()).hexdigest()[:10]
        return f"{self.name}-{digest}"


# -- loading ---------------------------------------------------------------------------------------


def load_sweep(path: str | Path) -> SweepConfiguration:
    """Load, layer and validate a sweep file. Raises ``InputError`` naming file, line, field and fix."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise InputError("file not found", source=source, fix="check the path")
    root, data = read_yaml(path)
    if not isinstance(data, dict):
        raise InputError(
            "a sweep file must be a mapping with 'name', 'projects' and 'parameters'", source=source
        )
    data = dict(data)
    data.setdefault("name", path.stem.replace(" ", "_"))
    return validate_sweep(data, source=source, root=root, base=path.parent)


def read_yaml(path: Path) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree (for line numbers) and the data of ``path``.

    Raises:
        InputError: the file cannot be read, is not UTF-8, is not YAML, or repeats a key
            (YAML keeps the last silently, so a repeated parameter would vanish).
    """
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read the file ({exc.strerror})", source=source, fix="check the path and its permissions"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
            source=source,
            line=raw[: exc.start].count(b"\n") + 1,
            fix="save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
        ) from None
    return parse_yaml(text, source)


def parse_yaml(text: str, source: str) -> tuple[yaml.Node | None, Any]:
    """The node tree and data of YAML ``text`` (a file's, or a request body's), checked as files are."""
    root, data = safe_yaml.load(text, source)  # bounded: no alias bomb, no 50,000-deep nesting
    _no_repeated_keys(root, source)
    return root, data


def _no_repeated_keys(node: yaml.Node | None, source: str, path: str = "") -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            where = f"{path}.{name}" if path else name
            if name in seen:
                raise InputError(
                    f"key '{name}' appears twice; YAML would keep only the last",
                    source=source,
                    field=where,
                    line=key.start_mark.line + 1,
                    fix="remove or rename one of them",
                )
            seen.add(name)
            _no_repeated_keys(value, source, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _no_repeated_keys(item, source, f"{path}[{i}]")


def validate_sweep(
    data: dict[str, Any], *, source: str = "<sweep>", root: yaml.Node | None = None, base: Path | None = None
) -> SweepConfiguration:
    """Validate a sweep given as a dict (the Python-shell path); errors as for files.

    Project paths are resolved against ``base`` (default: the current folder), and each
    project's ``orchestrator-project.yaml`` supplies defaults.
    """
    _refuse_non_finite(data, source, root)
    data = dict(data)
    data["projects"] = _resolve_projects(data.get("projects"), base or Path.cwd(), source, root)
    try:
        config = SweepConfiguration.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
        message, fix, subfield = explain(err)
        loc = (*loc, subfield) if subfield else loc
        field = _field_path(loc)
        raise InputError(
            message, source=source, field=field or None, line=_line_of(root, loc), fix=fix
        ) from None
    _check_consistency(config, source, root)
    space = config.space()
    if space.size == 0:
        raise InputError(
            "the parameter space is empty; give every parameter at least one value",
            source=source,
            field="parameters",
        )
    if not space.any_valid():
        raise InputError(
            "the constraints filter out every point of the grid; relax them or widen the parameter ranges",
            source=source,
            field="constraints.parameters",
        )
    return config


def _check_consistency(config: SweepConfiguration, source: str, root: yaml.Node | None) -> None:
    """What pydantic cannot see field by field: shadowed parameters, size, constraint evaluation,
    theory expressions over names that are not parameters."""
    for field, problem in config.theory_errors():
        what, _, fix = problem.partition("; ")
        loc: tuple[str | int, ...] = tuple(field.split("."))
        raise InputError(what, source=source, field=field, line=_line_of(root, loc), fix=fix)
    for i, project in enumerate(config.projects):
        for name in project.fixed:
            if name in config.parameters:
                loc = ("projects", i, "fixed", name)
                raise InputError(
                    f"'{name}' is both swept (parameters.{name}) and fixed in project "
                    f"'{project.name}'; one of the two would be silently ignored",
                    source=source,
                    field=_field_path(loc),
                    line=_line_of(root, loc),
                    fix=f"remove '{name}' from the project's 'fixed' or from 'parameters'",
                )
        _check_ladder(config, i, project, source, root)
        for name, argument in project.rename.items():
            loc = ("projects", i, "rename", name)
            taken = set(project.fixed) | {project.rename.get(k, k) for k in config.parameters if k != name}
            if name not in config.parameters:
                close = difflib.get_close_matches(name, list(config.parameters), n=1)
                raise InputError(
                    f"rename maps '{name}', which is not a parameter of the sweep"
                    + (f"; did you mean '{close[0]}'?" if close else ""),
                    source=source,
                    field=_field_path(loc),
                    line=_line_of(root, loc),
                    fix=f"name one of the parameters {sorted(config.parameters)}",
                )
            if argument in taken:
                raise InputError(
                    f"rename gives '{name}' the name '{argument}', which the entry already receives "
                    "(a parameter or a fixed value of that name)",
                    source=source,
                    field=_field_path(loc),
                    line=_line_of(root, loc),
                    fix="rename to an argument nothing else fills",
                )
    size = math.prod(r.count() for r in config.parameters.values())
    if size > MAX_SWEEP_POINTS:
        raise InputError(
            f"the parameter grid has {size:.3g} points, more than {MAX_SWEEP_POINTS:.0e}",
            source=source,
            field="parameters",
            fix="use coarser ranges, or sampled parameters ({sample: sobol, n: ...})",
        )
    space = config.space()
    sample = np.arange(min(space.size, 256), dtype=np.int64)
    columns = space.columns(sample)
    for i, text in enumerate(config.constraints.parameters):
        try:
            np.asarray(Expression(text).evaluate(columns), dtype=bool)
        except (ArithmeticError, TypeError, ValueError) as exc:  # numpy's errors derive from these
            loc = ("constraints", "parameters", i)
            raise InputError(
                f"constraint '{text}' cannot be evaluated on the parameters' values ({exc})",
                source=source,
                field=_field_path(loc),
                line=_line_of(root, loc),
                fix="compare numbers with numbers and strings with strings, and keep constants small",
            ) from None


_UNION_TAGS = {"values", "categorical", "linear", "log", "int", "sampled"}


def _check_ladder(
    config: SweepConfiguration, i: int, project: ProjectSpec, source: str, root: yaml.Node | None
) -> None:
    """A fidelity ladder's rung is no parameter, and shots as a budget needs the point's shots."""
    problem, loc = None, ("projects", i)  # type: tuple[str, str] | None, tuple[str | int, ...]
    fixed_shots = [j for j, rung in enumerate(project.fidelities) if rung.shots]
    if project.fidelities and FIDELITY in {*config.parameters, *project.fixed}:
        loc = ("projects", i, "fixed", FIDELITY) if FIDELITY in project.fixed else ("parameters", FIDELITY)
        problem = (
            f"'{FIDELITY}' is the rung of project '{project.name}''s fidelity ladder, not a parameter",
            f"rename it (e.g. level, with rename: {{level: {FIDELITY}}} if the entry takes it)",
        )
    elif fixed_shots and config.optimizer.early_stopping.low_fidelity_share:
        loc = ("optimizer", "early_stopping", "low_fidelity_share")
        problem = (
            f"shots as a budget would run a share of each point's shots first, but rung "
            f"{fixed_shots[0]} of project '{project.name}''s ladder fixes its shots",
            "remove low_fidelity_share (the ladder is the cheap first stage), or the rungs' shots",
        )
    if problem:
        what, fix = problem
        raise InputError(what, source=source, field=_field_path(loc), line=_line_of(root, loc), fix=fix)


def _resolve_projects(projects: Any, base: Path, source: str, root: yaml.Node | None) -> Any:
    if not isinstance(projects, list):
        return projects
    resolved = []
    for i, project in enumerate(projects):
        if not isinstance(project, dict) or "path" not in project:
            resolved.append(project)
            continue
        folder = (base / str(project["path"])).resolve()
        if not folder.is_dir():
            what = "is a file, not a folder" if folder.exists() else "does not exist"
            raise InputError(
                f"project folder {folder} {what}",
                source=source,
                field=f"projects[{i}].path",
                line=_line_of(root, ("projects", i, "path")),
                fix="give the project's folder (relative to the sweep file); its entry names the "
                "module or script inside it",
            )
        defaults = read_project_settings(folder)
        if "fidelities" in project:  # the ladder names each rung's device: the folder's is not one
            defaults = {k: v for k, v in defaults.items() if k not in ("device", "failover")}
        resolved.append({**defaults, **project, "path": str(folder)})
    return resolved


def read_project_settings(folder: Path) -> dict[str, Any]:
    """The project settings in ``folder/orchestrator-project.yaml``; empty when it has none.

    Raises:
        InputError: the file is not UTF-8, not YAML, repeats a key or is not a mapping.
    """
    path = folder / PROJECT_SETTINGS_FILE
    if not path.is_file():
        return {}
    root, data = read_yaml(path)
    data = data or {}
    if not isinstance(data, dict):
        raise InputError(
            "project settings must be a mapping (entry, kind, metrics, ...)",
            source=str(path),
            fix="write it as key: value lines",
        )
    _refuse_non_finite(data, str(path), root)
    return data


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc``, or of its closest existing parent."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = key if part == loc[-1] else value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
