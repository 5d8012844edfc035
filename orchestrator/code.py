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

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.archive import PREFIX, Archive, pack
from core.config import SweepConfiguration
from core.errors import ConfigurationError, InputError, TransientError
from core.identity import code_version
from core.project import ProjectSpec
from core.settings import Settings
from core.storage import S3, delete_object, read_object, write_object
from orchestrator.store import STORE_ERRORS
from orchestrator.store.code import CodeStore

log = logging.getLogger(__name__)


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


def archive_uri(results_root: str, digest: str) -> str | None:
    """Where an archive lives in the object store of ``results_root`` (None: a local results
    folder, whose archives live in Redis, since other hosts cannot read that folder)."""
    return f"{results_root}/code/{digest}.tar.gz" if results_root.startswith(S3) else None


def store_code(shelf: CodeStore, code: SweepCode, sweep_id: str, results_root: str) -> None:
    """Store a sweep's archives before any of its experiments is published: in the results' object
    store when there is one (Redis then keeps a pointer), else in Redis itself."""
    for archive in code.archives.values():
        if shelf.put(archive.digest, None, sweep_id):
            continue  # stored by an earlier submit, and kept now that this sweep uses it too
        uri = archive_uri(results_root, archive.digest)
        if uri is not None:
            write_object(uri, archive.data)  # the same name, the same bytes: a second PUT is harmless
        shelf.put(archive.digest, archive.data if uri is None else uri.encode(), sweep_id)


def fetch_code(shelf: CodeStore, digest: str) -> bytes:
    """An archive's bytes, from Redis or from the object store Redis points to.

    Raises:
        TransientError: Redis or the object store cannot be reached now.
        ConfigurationError: the archive is no longer stored (every sweep using it has ended).
    """
    try:
        data = shelf.get(digest)
        if data is not None and data.startswith(S3.encode()):
            data = read_object(data.decode())
    except FileNotFoundError:
        data = None
    except STORE_ERRORS as exc:  # Redis, and the object store (OSError)
        raise TransientError(f"the code archive {digest[:12]} could not be fetched: {exc}") from exc
    if data is None:
        raise ConfigurationError(
            f"the code archive {digest[:12]} is no longer stored (every sweep using it has ended); "
            f"submit the sweep again"
        )
    return data


def release_code(shelf: CodeStore, sweep_id: str, versions: Iterable[str], results_root: str) -> None:
    """A closed sweep lets go of its archives; those no other sweep uses are deleted (every row
    keeps their names)."""
    digests = [v.removeprefix(PREFIX) for v in versions if v.startswith(PREFIX)]
    for digest in shelf.release(sweep_id, digests):
        if (uri := archive_uri(results_root, digest)) is not None:
            try:
                delete_object(uri)
            except OSError as exc:  # a leftover object costs storage, never a result
                log.warning("could not delete the code archive %s: %s", uri, exc)


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
