"""A sweep's code travels with it: each project folder packed at submit, run from that archive.

At validation every project with ``code: shipped`` (the default) is packed
(:func:`core.archive.pack`) and its size checked; the archive's name becomes the project's code
version: in every experiment's identity, its reproducibility hash and each row's
``code_version``. At submit the archives are stored once per name, with the sweep as a user
(:class:`~orchestrator.store.code.CodeStore`); a worker on any host fetches one by name, checks
it and runs the project from its own cache (``workers.code_cache``). Editing the folder after
submit changes nothing for that sweep; submitting the file again ships the new code.

``code: shared`` keeps the old way for folders too large to ship that sit on a shared file
system: the code version is the folder's git commit or content hash, and the folder must exist
at the same path on every worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.archive import Archive, pack
from core.config import SweepConfiguration
from core.errors import ConfigurationError, InputError
from core.identity import code_version
from core.project import ProjectSpec
from core.settings import Settings


@dataclass(frozen=True)
class SweepCode:
    """What a sweep runs.

    Attributes:
        versions: project name -> code version (``sha256:<hex>`` for shipped code).
        archives: project name -> its archive, for projects whose code is shipped.
    """

    versions: dict[str, str]
    archives: dict[str, Archive] = field(default_factory=dict)


def pack_projects(config: SweepConfiguration, settings: Settings, source: str) -> SweepCode:
    """Pack every shipped project (validation's last stage); nothing is stored yet.

    Raises:
        InputError: a project's files exceed ``code_max_bytes`` (naming the largest ones), or a
            shipped project's path is a file rather than a folder.
    """
    versions: dict[str, str] = {}
    archives: dict[str, Archive] = {}
    for i, spec in enumerate(config.projects):
        if spec.code == "shared":
            versions[spec.name] = code_version(spec.path)
            continue
        if not Path(spec.path).is_dir():
            raise InputError(
                f"project '{spec.name}': {spec.path} is not a folder, and only folders are shipped to workers",
                source=source,
                field=f"projects[{i}].path",
                fix="give the project's folder, or set code: shared if every worker has this path",
            )
        archive = pack(spec.path, spec.exclude)
        if archive.size > settings.code_max_bytes:
            largest = ", ".join(f"{e.path} ({_mb(e.size)})" for e in archive.largest())
            raise InputError(
                f"project '{spec.name}' would ship {_mb(archive.size)} of files to the workers, more than "
                f"code_max_bytes ({_mb(settings.code_max_bytes)}); the largest: {largest}",
                source=source,
                field=f"projects[{i}].exclude",
                fix="leave data and build output out with the project's exclude: [pattern, ...] "
                "(gitignore syntax; .gitignore is honoured too), set code: shared for a folder every "
                "worker sees at the same path, or raise ORCHESTRATOR_CODE_MAX_BYTES",
            )
        archives[spec.name] = archive
        versions[spec.name] = archive.code_version
    return SweepCode(versions, archives)


def runnable_spec(spec: ProjectSpec, folder: Path | None) -> ProjectSpec:
    """``spec`` as this host runs it: from the unpacked archive ``folder``, or in place when its
    code is shared (whose folder must then exist here).

    Raises:
        ConfigurationError: shared code whose folder this host does not have.
    """
    if folder is not None:
        return spec.model_copy(update={"path": folder})
    if not Path(spec.path).exists():
        raise ConfigurationError(
            f"project '{spec.name}' has code: shared, but {spec.path} does not exist on this worker; "
            f"mount the folder at that path on every worker, or remove code: shared to ship the code"
        )
    return spec


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
