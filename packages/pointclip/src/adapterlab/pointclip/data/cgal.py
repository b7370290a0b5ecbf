"""Real meshes offline: the 138 ``.off`` meshes of Debian's ``libcgal-demo`` (animals, people,
aircraft, mechanical parts), unlabelled, for CLIP2Point's image-depth pre-training stage.

:func:`fetch_cgal_meshes` runs ``apt-get download libcgal-demo`` and ``dpkg-deb -x`` in a
temporary folder (no root, nothing installed) and copies the ``.off`` members of
``usr/share/doc/libcgal-dev/data.tar.gz`` into ``dest`` (a flat mesh folder, the ``meshes``
layout of :func:`~adapterlab.pointclip.pipeline.detect_layout`). Without apt it raises
:class:`MeshFetchError` with the fallback (the procedural meshes) in the message.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

__all__ = ["CGAL_PACKAGE", "MeshFetchError", "fetch_cgal_meshes"]

CGAL_PACKAGE = "libcgal-demo"
_MEMBER = "usr/share/doc/libcgal-dev/data.tar.gz"


class MeshFetchError(RuntimeError):
    """The Debian package could not be fetched or unpacked."""


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=600)
    except FileNotFoundError as err:
        raise MeshFetchError(
            f"'{cmd[0]}' is not available (not a Debian/Ubuntu machine?); use the procedural "
            "meshes (run-all's default) or pass --pretrain-data with your own mesh folder"
        ) from err
    except subprocess.CalledProcessError as err:
        tail = (err.stderr or "").strip().splitlines()[-1:] or ["no message"]
        raise MeshFetchError(
            f"'{' '.join(cmd)}' failed ({tail[0]}); use the procedural meshes (run-all's "
            "default) or pass --pretrain-data with your own mesh folder"
        ) from err


def fetch_cgal_meshes(dest: str | Path) -> Path:
    """``dest`` filled with libcgal-demo's ``.off`` meshes (reused when already there)."""
    from adapterlab.core.engine import atomic_directory

    dest = Path(dest)
    if dest.is_dir() and any(dest.glob("*.off")):
        return dest
    with tempfile.TemporaryDirectory(prefix="cgal-") as tmp_name:
        tmp = Path(tmp_name)
        _run(["apt-get", "download", CGAL_PACKAGE], tmp)
        debs = sorted(tmp.glob(f"{CGAL_PACKAGE}_*.deb"))
        if not debs:
            raise MeshFetchError(f"apt-get download {CGAL_PACKAGE} wrote no .deb in {tmp}")
        _run(["dpkg-deb", "-x", str(debs[0]), "x"], tmp)
        archive = tmp / "x" / _MEMBER
        if not archive.is_file():
            raise MeshFetchError(f"{debs[0].name} holds no {_MEMBER}")

        def write(folder: Path) -> None:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar.getmembers():
                    if not (member.isfile() and member.name.lower().endswith(".off")):
                        continue
                    name = Path(member.name).name  # flat: no path from the archive is used
                    source = tar.extractfile(member)
                    if source is None:
                        continue
                    with source, open(folder / name, "wb") as out:
                        shutil.copyfileobj(source, out)

        atomic_directory(dest, write)
    return dest
