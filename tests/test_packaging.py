"""Install metadata: the torch pin, no torchvision, conda env == pyproject."""

from __future__ import annotations

import tomllib
import yaml

from conftest import REPO


def _pyproject_deps() -> set[str]:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return set(meta["dependencies"]) | set(meta["optional-dependencies"]["test"])


def _conda_pip_deps() -> set[str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return set(pip)


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    assert _conda_pip_deps() == _pyproject_deps()


def test_torch_is_pinned_exactly_and_torchvision_absent():
    deps = _pyproject_deps()
    assert "torch==2.13.0" in deps
    assert not any(d.startswith("torchvision") for d in deps)
