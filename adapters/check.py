"""``orchestrator check PATH``: can these projects run, and do they fit their sweep?

``PATH`` is a sweep file (every project is checked against the sweep's parameters and dry-run
at its first valid point) or a bare project folder (its ``orchestrator-project.yaml`` is the
project spec, and its ``check_parameters`` the dry-run point).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters import adapt_project
from adapters.contract import CompatibilityReport
from core.config import PROJECT_SETTINGS_FILE, load_sweep, read_project_settings
from core.errors import InputError
from core.project import ProjectSpec

_LOG_LINES = 12


def check_target(path: str) -> tuple[list[CompatibilityReport], bool]:
    """Check a sweep file's projects, or one project folder.

    Returns:
        The reports (one per project) and whether all of them pass.

    Raises:
        InputError: the path is neither, or its file does not validate (exit code 2).
    """
    target = Path(path)
    if target.is_dir():
        spec, point = project_from_folder(target)
        reports = [adapt_project(spec.path, spec).validate_compatibility(list(point), point)]
    elif target.is_file():
        sweep = load_sweep(target)
        point = first_point(sweep)
        reports = [
            adapt_project(spec.path, spec).validate_compatibility(list(sweep.parameters), point)
            for spec in sweep.projects
        ]
    else:
        raise InputError("no such project folder or sweep file; check the path", source=str(path))
    return reports, all(r.ok for r in reports)


def project_from_folder(folder: Path) -> tuple[ProjectSpec, dict[str, Any]]:
    """The project spec in ``folder/orchestrator-project.yaml`` and its dry-run parameters."""
    settings = folder / PROJECT_SETTINGS_FILE
    if not settings.is_file():
        raise InputError(
            f"no {PROJECT_SETTINGS_FILE} in this folder; write one (entry, kind, metrics, "
            f"check_parameters) or check a sweep file that uses the project",
            source=str(folder),
        )
    data = read_project_settings(folder)  # read as a sweep file's projects read it
    data.setdefault("name", folder.resolve().name.replace(" ", "_"))
    data["path"] = str(folder.resolve())
    try:
        spec = ProjectSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{err['msg']}; fix the value", source=str(settings), field=field) from None
    return spec, dict(spec.check_parameters)


def first_point(sweep: Any) -> dict[str, Any]:
    """The sweep's first point that passes its parameter constraints."""
    space = sweep.space()
    for chunk in space.iter_valid():
        if len(chunk):
            return space.point(int(chunk[0]))
    raise InputError("the constraints filter out every point; relax them", field="constraints.parameters")


def render_report(report: CompatibilityReport) -> str:
    """The report as plain text for a terminal: one line per check, then the verdict."""
    head = f"project {report.project} ({report.kind}"
    head += f", {report.entry})" if report.entry else ")"
    lines = [
        head,
        f"  folder: {report.path}" + (f"   code: {report.code_version}" if report.code_version else ""),
    ]
    width = max((len(c.name) for c in report.checks), default=0)
    for check in report.checks:
        lines.append(f"  {'ok  ' if check.ok else 'FAIL'}  {check.name.ljust(width)}  {check.detail}")
    result = report.dry_run
    if result is not None:
        lines.append(f"  dry-run parameters: {result.parameters}")
        if result.extra.get("flags"):
            lines += [f"  flag: {f['metric']}: {f['problem']}" for f in result.extra["flags"]]
        if result.status != "completed" and result.log.strip():
            lines.append("  log tail:")
            lines += [f"    {ln}" for ln in result.log.rstrip().splitlines()[-_LOG_LINES:]]
    lines.append(f"  verdict: {report.verdict}")
    return "\n".join(lines)
