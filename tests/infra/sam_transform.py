"""template.yaml through the real SAM transform (aws-sam-translator), as CloudFormation receives it.

Run in the deploy venv (`.venv-deploy`: the translator's pydantic pin clashes with the layer's), by
`make deploy-check` and by the IAM recorder (tests/iam):

    .venv-deploy/bin/python tests/infra/sam_transform.py [Name=Value ...] > transformed.json

Imports only the translator and the standard library, so it runs outside the test venv.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

# What SAM attaches by name; `sam deploy` resolves these through IAM, here they are fixed ARNs.
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "AWSLambdaSQSQueueExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",
}


class _ManagedPolicies:
    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def transform(parameters: dict[str, str]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform as sam_transform
    from samtranslator.yaml_helper import yaml_parse

    document = yaml_parse(TEMPLATE.read_text())
    for resource in document["Resources"].values():  # what `sam package` does to local paths
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = f"s3://deploy-bucket/{key.lower()}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "ap-southeast-1")  # the translator needs a region
    return dict(sam_transform(document, parameters, _ManagedPolicies()))


def main(argv: list[str]) -> int:
    parameters = dict(argument.split("=", 1) for argument in argv)
    json.dump(transform(parameters), sys.stdout, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
