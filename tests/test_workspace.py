"""Cross-package checks: one namespace, separate distributions, each importable on its own."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["core", "pointclip", "audio"]


def test_adapterlab_is_a_namespace_package() -> None:
    import adapterlab

    assert getattr(adapterlab, "__file__", None) is None
    for name in PACKAGES:
        assert not (ROOT / "packages" / name / "src" / "adapterlab" / "__init__.py").exists()


@pytest.mark.parametrize("name", PACKAGES)
def test_each_package_is_its_own_distribution(name: str) -> None:
    dist = metadata.distribution(f"adapterlab-{name}")
    files = [str(f) for f in dist.files or []]
    assert any(f"adapterlab/{name}/__init__.py" in f for f in files) or dist.read_text(
        "direct_url.json"
    ), f"adapterlab-{name} does not provide adapterlab.{name}"


@pytest.mark.parametrize("name", PACKAGES)
def test_each_package_imports_alone(name: str) -> None:
    others = [p for p in PACKAGES if p not in (name, "core")]
    code = (
        f"import sys, adapterlab.{name}; "
        f"bad = [m for m in {others!r} if 'adapterlab.' + m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_torch_pins_agree_across_packages() -> None:
    pins: dict[str, set[str]] = {}
    for name in PACKAGES:
        project = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())
        for dep in project["project"]["dependencies"]:
            if dep.startswith(("torch==", "torchvision==", "torchaudio==")):
                lib, version = dep.split("==")
                pins.setdefault(lib, set()).add(version)
    assert pins["torch"] == {"2.13.0"}
    assert all(len(v) == 1 for v in pins.values()), pins


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme
