"""Cross-package checks: one namespace, separate distributions, each importable on its own."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent.name for p in (ROOT / "packages").glob("*/pyproject.toml"))


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


def test_dependencies_are_ranges_and_the_lock_pins_them() -> None:
    """Packages declare compatible ranges (``torch>=...``); only ``uv.lock`` pins exact versions."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    for name in PACKAGES:
        project = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())
        for dep in project["project"]["dependencies"]:
            assert "==" not in dep, f"adapterlab-{name} pins {dep!r}; declare a range instead"
    for lib in ("torch", "transformers", "peft", "accelerate"):
        assert lib in locked, f"uv.lock does not pin {lib}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme
