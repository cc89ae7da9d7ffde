"""The layers' requirements, resolved for the platform Lambda runs them on (CPython 3.13, manylinux
aarch64), agree with the pins the tests run with, and ship one AWS SDK.

pip resolves `layers/*/requirements.txt` together (the LongClipFunction has both layers on its
path) with `--dry-run --report`, from binary wheels for that platform only, as `sam build` would
install them. It needs a package index: without one the test is skipped, except under CI, where
it must run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERS = sorted(REPO.glob("layers/*/requirements.txt"))
# The manylinux tags an Amazon Linux 2023 arm64 (glibc 2.34) runtime accepts that wheels use.
PLATFORMS = [
    "manylinux2014_aarch64",
    "manylinux_2_17_aarch64",
    "manylinux_2_28_aarch64",
    "manylinux_2_34_aarch64",
]
SDK = ("boto3", "botocore", "s3transfer")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            name, version = line.split("==", 1)
            pins[_canonical(name.split("[", 1)[0])] = version.strip()
    return pins


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    report = tmp_path_factory.mktemp("resolve") / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed"]
    command += ["--report", str(report), "--only-binary=:all:", "--python-version", "3.13"]
    command += ["--implementation", "cp", "--abi", "cp313", "--target", str(report.parent / "unused")]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    for requirements in LAYERS:
        command += ["-r", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        if not os.environ.get("CI") and not _pypi_reachable():
            pytest.skip("PyPI is not reachable from here (and CI is not set): cannot resolve the layers")
        pytest.fail(f"the layers do not resolve for Lambda's platform:\n{result.stderr[-3000:]}")
    installs = json.loads(report.read_text())["install"]
    return {_canonical(i["metadata"]["name"]): i for i in installs}


def test_layers_ship_one_aws_sdk_pinned_together(resolved: dict[str, dict[str, Any]]) -> None:
    common = _pins(REPO / "layers/common/requirements.txt")
    for package in SDK:
        assert package in common, f"layers/common/requirements.txt must pin {package}"
        assert resolved[package]["metadata"]["version"] == common[package], package
    # boto3 declares the botocore and s3transfer it works with: the pins must satisfy it.
    from packaging.requirements import Requirement

    for text in resolved["boto3"]["metadata"].get("requires_dist", []):
        requirement = Requirement(text)
        if requirement.name in SDK and requirement.marker is None:
            assert requirement.specifier.contains(common[requirement.name]), (text, common)


def test_every_pin_the_tests_use_is_what_deploys(resolved: dict[str, dict[str, Any]]) -> None:
    """A package both in a layer and in requirements.lock has one version: the tests run what Lambda does."""
    lock = _pins(REPO / "requirements.lock")
    mismatched = {
        name: (install["metadata"]["version"], lock[name])
        for name, install in resolved.items()
        if name in lock and install["metadata"]["version"] != lock[name]
    }
    assert not mismatched, f"layer version vs requirements.lock: {mismatched}"
    for requirements in LAYERS:
        for name, version in _pins(requirements).items():
            assert lock.get(name) == version, (
                f"{requirements.relative_to(REPO)}: {name}=={version} not locked"
            )


def test_every_compiled_wheel_is_for_aarch64(resolved: dict[str, dict[str, Any]]) -> None:
    for name, install in resolved.items():
        wheel = install["download_info"]["url"].rsplit("/", 1)[-1]
        platform_tag = wheel.removesuffix(".whl").rsplit("-", 1)[-1]
        assert platform_tag == "any" or "aarch64" in platform_tag, f"{name}: {wheel}"
