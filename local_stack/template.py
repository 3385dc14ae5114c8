"""Reading template.yaml, so local resources are the deployed ones and never defined twice."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
# The local stack's name: its resources are named after it (provision.physical_ids).
STACK_NAME = "quota-uploads-local"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short tags (``!Ref X``) as their long form (``{"Ref": X}``)."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(None, None, f"unexpected node {node!r}")
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as stream:
        document = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template (no top-level mapping)")
    return document


@dataclass
class Resolver:
    """Resolves the intrinsic functions a local stack needs, with local names for resources."""

    template: Mapping[str, Any]
    physical_ids: Mapping[str, str]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    region: str = "us-east-1"
    account: str = "123456789012"
    # Where the local AWS answers: a queue's Ref is its URL there, as moto builds queue URLs.
    endpoint: str | None = None
    # Attributes AWS assigns when it creates a resource (a table's StreamArn), by logical id
    # and attribute name: provisioning records them, later resolution reads them. The name
    # "Ref" holds an assigned Ref, such as a user pool's id.
    assigned: dict[tuple[str, str], str] = field(default_factory=dict)

    def parameter(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        spec = self.template["Parameters"][name]
        default = spec.get("Default")
        if spec.get("Type") == "CommaDelimitedList" and isinstance(default, str):
            return [item.strip() for item in default.split(",") if item.strip()]
        return default

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK_NAME,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.parameter(name)
        if (name, "Ref") in self.assigned:
            return self.assigned[name, "Ref"]
        kind = self.template["Resources"][name]["Type"]
        if kind == "AWS::SNS::Topic":
            return self.arn(name)
        if kind == "AWS::SQS::Queue":
            if self.endpoint is None:
                raise KeyError(f"the URL of {name} needs the endpoint its queue is served on")
            return f"{self.endpoint}/{self.account}/{self.physical_ids[name]}"
        return self.physical_ids[name]

    def arn(self, logical_id: str) -> str:
        kind = self.template["Resources"][logical_id]["Type"]
        name = self.physical_ids[logical_id]
        if kind == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{self.region}:{self.account}:{name}"
        if kind == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{name}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{name}"
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{self.region}:{self.account}:{name}"
        raise KeyError(f"no local ARN for {logical_id} ({kind})")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                logical_id, attribute = arg
                if (logical_id, attribute) in self.assigned:
                    return self.assigned[logical_id, attribute]
                if attribute == "Arn":
                    return self.arn(logical_id)
                if attribute in ("QueueName", "TopicName"):
                    return self.physical_ids[logical_id]
                raise KeyError(
                    f"no local value for {logical_id}.{attribute}"
                    " (attributes AWS assigns, such as a stream's ARN, exist once provisioned)"
                )
            if fn == "Fn::Sub":
                return self._sub(arg)
            if fn == "Fn::Join":
                separator, items = arg
                return separator.join(str(i) for i in self.resolve(items))
            if fn == "Fn::If":
                condition, if_true, if_false = arg
                return self.resolve(if_true if self.condition(condition) else if_false)
        return {k: self.resolve(v) for k, v in value.items()}

    def condition(self, name: str) -> bool:
        ((fn, arg),) = self.template["Conditions"][name].items()
        if fn != "Fn::Equals":
            raise KeyError(f"condition {name}: only Fn::Equals is read by the local stack")
        left, right = self.resolve(arg)
        return str(left) == str(right)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self.resolve({"Fn::GetAtt": [logical_id, attribute]}))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def create_table_request(
    properties: Mapping[str, Any], table_name: str, *, stream: bool = False
) -> dict[str, Any]:
    """The CreateTable call for a template's AWS::DynamoDB::Table properties.

    With ``stream``, its StreamSpecification too. Tables that only hold the ledger for a test
    go without: moto then records no stream of their writes.
    """
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if stream and "StreamSpecification" in properties:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": properties["StreamSpecification"]["StreamViewType"],
        }
    if "GlobalSecondaryIndexes" in properties:
        request["GlobalSecondaryIndexes"] = [
            {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
            for index in properties["GlobalSecondaryIndexes"]
        ]
    return request
