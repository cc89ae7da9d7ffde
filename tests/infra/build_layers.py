"""Build the template's layers as `sam build` does: aws-lambda-builders' python_pip workflow, with
each layer's Metadata (BuildMethod python3.13, BuildArchitecture), into <out>/<LayerId>/python/
(what Lambda unpacks under /opt/python).

Run in the deploy venv (`.venv-deploy`, Python 3.13, which also gives the workflow its
`python3.13`):

    .venv-deploy/bin/python tests/infra/build_layers.py OUT [--architecture x86_64]

`--architecture` overrides BuildArchitecture: this machine is x86_64, so an arm64 build's compiled
modules cannot be loaded here; a build for the host, by the same workflow, can.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def layers() -> dict[str, dict[str, str]]:
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((REPO / "template.yaml").read_text())
    return {
        logical_id: {
            "content": resource["Properties"]["ContentUri"],
            "runtime": resource["Metadata"]["BuildMethod"],
            "architecture": resource["Metadata"].get("BuildArchitecture", "x86_64"),
        }
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    }


def build(out: Path, architecture: str | None) -> None:
    from aws_lambda_builders.builder import LambdaBuilder

    builder = LambdaBuilder(language="python", dependency_manager="pip", application_framework=None)
    for logical_id, layer in layers().items():
        source = REPO / layer["content"]
        artifacts = out / logical_id / "python"
        shutil.rmtree(artifacts, ignore_errors=True)
        artifacts.mkdir(parents=True)
        with tempfile.TemporaryDirectory() as scratch:
            builder.build(
                str(source),
                str(artifacts),
                scratch,
                str(source / "requirements.txt"),
                runtime=layer["runtime"],
                architecture=architecture or layer["architecture"],
                executable_search_paths=[str(Path(sys.executable).parent)],
                is_building_layer=True,
            )
        print(f"{logical_id}: {artifacts}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--architecture", choices=["arm64", "x86_64"])
    args = parser.parse_args()
    build(args.out, args.architecture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
