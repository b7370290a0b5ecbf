"""Real offline material from Debian's archive: a package's files, fetched once into a cache
(``apt-get download`` + ``dpkg-deb -x``), and the installed-package database."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["DebianUnavailable", "cache_root", "fetch_debian_package"]


class DebianUnavailable(RuntimeError):
    """A Debian package could not be fetched; the message names the manual fix."""


def cache_root() -> Path:
    """``$ADAPTERLAB_CACHE`` or ``~/.cache/adapterlab``."""
    return Path(os.environ.get("ADAPTERLAB_CACHE") or Path.home() / ".cache" / "adapterlab")


def fetch_debian_package(name: str, wanted: str) -> Path:
    """``<cache>/debian/<name>/<wanted>`` after unpacking package ``name`` there once."""
    target = cache_root() / "debian" / name
    path = target / wanted
    if path.exists():
        return path
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DebianUnavailable(
                f"{tool} not found: unpack Debian's {name} into {target} yourself (so that "
                f"{path} exists)"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        try:
            subprocess.run(
                ["apt-get", "download", name],
                cwd=tmp,
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            )
            debs = sorted(Path(tmp).glob(f"{name}_*.deb"))
            if not debs:
                raise DebianUnavailable(f"apt-get download {name} wrote no .deb")
            unpacked = Path(tmp) / "unpacked"
            subprocess.run(
                ["dpkg-deb", "-x", str(debs[0]), str(unpacked)],
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
            detail = (getattr(err, "stderr", "") or str(err)).strip().splitlines()
            raise DebianUnavailable(
                f"could not fetch Debian's {name} ({detail[-1] if detail else err}); check that "
                "the Debian archive is reachable (apt-get update)"
            ) from None
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)
    if not path.exists():
        raise DebianUnavailable(f"Debian's {name} has no {wanted}")
    return path
