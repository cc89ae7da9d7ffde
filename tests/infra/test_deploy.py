"""The template and the layers as AWS receives them (`make deploy-check`, run by CI; marker `deploy`).

- The real SAM transform (aws-sam-translator) of template.yaml for the created-bucket and the
  existing-bucket parameter sets, linted by cfn-lint: what CloudFormation gets.
- Both layers built for arm64 by aws-lambda-builders (the workflow `sam build` runs for
  `BuildMethod: python3.13`, `BuildArchitecture: arm64`): every compiled module is an AArch64 ELF
  file, and each function's unzipped code plus its layers stays under Lambda's 250 MB.
- The handlers import from built layers on Python 3.13 in the runtime's path order: the function's
  code, then /opt/python (the layers, unpacked in order), then nothing else (`-S`: not even the
  runtime's own boto3, so the layer's SDK is the one used). This machine is x86_64 and cannot load
  aarch64 modules, so the imports run on a build for the host by the same workflow; the arm64
  build's architecture and sizes are proven above.

Everything runs in `.venv-deploy` (tests/infra/sam_transform.py, tests/infra/build_layers.py).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY_BIN = REPO / ".venv-deploy" / "bin"
RUNTIME_PYTHON = DEPLOY_BIN / "python3.13"
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # function code and all its layers, unzipped
ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # e_machine: EM_AARCH64, EM_X86_64
HOST_ARCHITECTURE = {"aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "x86_64")
PARAMETER_SETS = {
    "created-bucket": {},
    "existing-bucket": {
        "ExistingBucketName": "their-media-bucket",
        "ApiKeySecretArn": "arn:aws:secretsmanager:ap-southeast-1:123456789012:secret:their/key-AbCdEf",
    },
}

pytestmark = [
    pytest.mark.deploy,
    pytest.mark.skipif(not RUNTIME_PYTHON.exists(), reason="no .venv-deploy: run `make deploy-check`"),
]


def deploy_python(*arguments: str, timeout: float = 900) -> str:
    result = subprocess.run(
        [str(RUNTIME_PYTHON), *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PATH": f"{DEPLOY_BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.fixture(scope="module", params=sorted(PARAMETER_SETS))
def transformed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    name = request.param
    parameters = [f"{k}={v}" for k, v in PARAMETER_SETS[name].items()]
    out = tmp_path_factory.mktemp("transformed") / f"{name}.json"
    out.write_text(deploy_python(str(REPO / "tests/infra/sam_transform.py"), *parameters))
    return name, out


def test_the_transformed_template_lints_clean(transformed: tuple[str, Path]) -> None:
    _, path = transformed
    result = subprocess.run(
        [str(DEPLOY_BIN / "cfn-lint"), "--regions", "ap-southeast-1", "us-east-1", "--", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_reserved_concurrency_and_capped_event_sources(transformed: tuple[str, Path]) -> None:
    _, path = transformed
    resources: dict[str, Any] = json.loads(path.read_text())["Resources"]
    assert "ReservedConcurrentExecutions" not in path.read_text()
    mappings = {
        r["Properties"]["FunctionName"]["Ref"]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    assert set(mappings) == {"SubmitFunction", "CompleteFunction", "LongClipFunction"}
    for function, properties in mappings.items():
        parameter = properties["ScalingConfig"]["MaximumConcurrency"]["Ref"]
        assert parameter == function.replace("Function", "MaxConcurrency"), function


def test_the_existing_bucket_gets_no_bucket_resources(transformed: tuple[str, Path]) -> None:
    """Conditions stay for CloudFormation to evaluate; the bucket and its policy carry CreateBucket."""
    _, path = transformed
    resources = json.loads(path.read_text())["Resources"]
    assert resources["MediaBucket"]["Condition"] == "CreateBucket"
    assert resources["MediaBucketPolicy"]["Condition"] == "CreateBucket"


def _elf_machine(path: Path) -> int | None:
    with path.open("rb") as handle:
        header = handle.read(20)
    if header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both builds at once (each mostly waits on wheel downloads): arm64, and the host's."""
    outs = {arch: tmp_path_factory.mktemp(f"build-{arch}") for arch in ("arm64", "host")}
    env = {**os.environ, "PATH": f"{DEPLOY_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    script = str(REPO / "tests/infra/build_layers.py")
    running = {
        # arm64 as the template's BuildArchitecture says; the host's architecture overriding it.
        "arm64": [str(RUNTIME_PYTHON), script, str(outs["arm64"])],
        "host": [str(RUNTIME_PYTHON), script, str(outs["host"]), "--architecture", HOST_ARCHITECTURE],
    }
    processes = {
        arch: subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for arch, command in running.items()
    }
    for arch, process in processes.items():
        _, stderr = process.communicate(timeout=1200)
        assert process.returncode == 0, f"{arch} build failed:\n{stderr[-4000:]}"
    return outs


@pytest.fixture(scope="module")
def arm64_build(builds: dict[str, Path]) -> Path:
    return builds["arm64"]


@pytest.fixture(scope="module")
def host_build(builds: dict[str, Path]) -> Path:
    return builds["host"]


def _function_layers() -> dict[str, tuple[Path, list[str]]]:
    """Function logical ID -> (its code dir, its layers in order), from the template."""
    from local.cfn import load_template

    template = load_template()
    common = [layer["Ref"] for layer in template["Globals"]["Function"]["Layers"]]
    return {
        logical_id: (
            REPO / resource["Properties"]["CodeUri"],
            [*common, *[layer["Ref"] for layer in resource["Properties"].get("Layers", [])]],
        )
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_every_compiled_module_of_the_arm64_build_is_aarch64(arm64_build: Path) -> None:
    machines: dict[int | None, list[str]] = {}
    for path in arm64_build.rglob("*"):
        if path.is_file() and (".so" in path.suffixes or path.suffix == ".so"):
            machines.setdefault(_elf_machine(path), []).append(str(path.relative_to(arm64_build)))
    assert machines, "no compiled module found: is the build empty?"
    assert set(machines) == {ELF_MACHINE["arm64"]}, {m: files[:5] for m, files in machines.items()}
    # pydantic's core, the PyAV/FFmpeg libraries: the ones a wrong-architecture build would break.
    built = "\n".join(machines[ELF_MACHINE["arm64"]])
    assert "pydantic_core" in built and "av" in built


def test_each_function_fits_lambdas_unzipped_limit(arm64_build: Path) -> None:
    sizes = {}
    for logical_id, (code, layers) in _function_layers().items():
        total = _size(code) + sum(_size(arm64_build / layer) for layer in layers)
        sizes[logical_id] = total
        assert total < LAMBDA_UNZIPPED_LIMIT, f"{logical_id}: {total / 2**20:.0f} MB unzipped"
    print({k: f"{v / 2**20:.1f} MB" for k, v in sizes.items()})


def test_the_layers_do_not_overwrite_each_other(arm64_build: Path) -> None:
    """Lambda unpacks a function's layers into one /opt in order: a file in two would be lost."""
    common = {p.relative_to(arm64_build / "CommonLayer") for p in (arm64_build / "CommonLayer").rglob("*")}
    media = {p.relative_to(arm64_build / "MediaLayer") for p in (arm64_build / "MediaLayer").rglob("*")}
    # Each layer's requirements.txt is copied in beside its packages (as `sam build` does): harmless.
    shared = {p for p in common & media if (arm64_build / "CommonLayer" / p).is_file()}
    shared.discard(Path("python/requirements.txt"))
    assert not shared, sorted(map(str, shared))[:10]


@pytest.mark.parametrize(
    "logical_id", ["SubmitFunction", "PollFunction", "CompleteFunction", "LongClipFunction"]
)
def test_handlers_import_from_the_built_layers_as_lambda_orders_them(
    host_build: Path, tmp_path: Path, logical_id: str
) -> None:
    code, layers = _function_layers()[logical_id]
    opt = tmp_path / "opt"
    for layer in layers:  # unpacked in order, as Lambda does
        shutil.copytree(host_build / layer, opt, dirs_exist_ok=True)
    task = tmp_path / "task"
    shutil.copytree(code, task)
    probe = (
        "import sys\n"
        f"sys.path[:0] = [{str(task)!r}, {str(opt / 'python')!r}]\n"
        "import app, boto3, botocore, s3transfer\n"
        "assert callable(app.lambda_handler)\n"
        f"for module in (boto3, botocore, s3transfer):\n"
        f"    assert module.__file__.startswith({str(opt)!r}), module.__file__\n"
        "print(sys.version_info[:2], boto3.__version__, botocore.__version__)\n"
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_REGION": "ap-southeast-1",
        "AWS_DEFAULT_REGION": "ap-southeast-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "wanedit",
        "POWERTOOLS_TRACE_DISABLED": "true",
        **_globals_environment(),
    }
    # -S: no site-packages at all (not even the runtime's boto3); -E: no PYTHON* from here.
    result = subprocess.run(
        [str(RUNTIME_PYTHON), "-S", "-E", "-c", probe],
        cwd=task,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("(3, 13)"), result.stdout


def _globals_environment() -> dict[str, str]:
    from local.cfn import load_template
    from tests.infra.test_template import dummy_resolver, globals_env

    template = load_template()
    return {k: str(v) for k, v in dummy_resolver(template).resolve(globals_env(template)).items()}
