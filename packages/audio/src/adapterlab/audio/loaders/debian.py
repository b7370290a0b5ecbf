"""Fetch a Debian package's files without installing it: ``apt-get download`` + ``dpkg-deb -x``.

The embedded demo's real recordings come from Debian's archive (a package registry the project can reach,
unlike the model and dataset hubs). The unpacked tree is cached under ``cache_dir/<package>``; when apt is
unavailable or unreachable the error says so and names the offline alternatives.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from adapterlab.core.engine import atomic_directory


class DebianFetchError(RuntimeError):
    """A Debian package could not be downloaded or unpacked (no apt, no network, unknown package)."""


def fetch_debian_package(
    package: str, cache_dir: str | os.PathLike, *, timeout: float = 600.0
) -> Path:
    """Unpacked files of Debian ``package`` under ``cache_dir/package`` (downloaded once, then reused)."""
    target = Path(cache_dir).expanduser() / package
    if (target / ".complete").is_file():
        return target
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DebianFetchError(
                f"cannot fetch the Debian package {package!r}: `{tool}` is not installed (the embedded "
                "demo needs a Debian/Ubuntu machine with access to its package archive); pass a "
                "dataset folder with --data instead"
            )

    def write(tmp: Path) -> None:
        with tempfile.TemporaryDirectory(prefix=".deb-", dir=target.parent) as dl:
            _run(["apt-get", "download", package], cwd=dl, timeout=timeout, package=package)
            debs = sorted(Path(dl).glob(f"{package}_*.deb"))
            if not debs:
                raise DebianFetchError(f"apt-get download {package} produced no .deb file in {dl}")
            _run(
                ["dpkg-deb", "-x", str(debs[-1]), str(tmp)],
                cwd=dl,
                timeout=timeout,
                package=package,
            )
            (tmp / ".complete").write_text(debs[-1].name + "\n")

    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_directory(target, write)
    return target


def _run(cmd: list[str], *, cwd: str, timeout: float, package: str) -> None:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise DebianFetchError(f"`{' '.join(cmd)}` timed out after {timeout:.0f}s") from err
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DebianFetchError(
            f"could not fetch the Debian package {package!r}: `{' '.join(cmd)}` failed "
            f"({last[0]}). Check that the Debian archive is reachable (`apt-get update`), or pass a "
            "dataset folder with --data (e.g. a Speech Commands v2 folder with --dataset speech_commands)"
        )
