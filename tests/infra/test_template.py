"""The template is code: least privilege, a private encrypted bucket, alarms that can fire."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.config import ManualArgs

from local_stack.template import TEMPLATE, resources_of_type
from quota_uploads.config import MAX_URL_EXPIRY_SECONDS
from quota_uploads.ledger.checks import WRITE_LAG_SECONDS


def resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return props


def test_cfn_lint_finds_no_errors_or_warnings() -> None:
    matches = lint(TEMPLATE.read_text(), config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    assert [str(m) for m in matches if m.rule.id[0] in "EW"] == []


def test_the_bucket_is_private_encrypted_and_tls_only(template: dict[str, Any]) -> None:
    bucket = resource(template, "UploadsBucket")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert "VersioningConfiguration" not in bucket
    (statement,) = resource(template, "UploadsBucketPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bucket_cors_lets_browsers_put_with_the_signed_headers(template: dict[str, Any]) -> None:
    (rule,) = resource(template, "UploadsBucket")["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == ["PUT"]
    assert {"content-type", "x-amz-checksum-sha256", "if-none-match"} <= set(rule["AllowedHeaders"])
    assert rule["ExposedHeaders"] == ["ETag"]
    assert rule["AllowedOrigins"] == {"Ref": "AllowedOrigins"}


def test_every_object_change_under_users_reaches_the_queue(template: dict[str, Any]) -> None:
    configs = resource(template, "UploadsBucket")["NotificationConfiguration"][
        "QueueConfigurations"
    ]
    assert {c["Event"] for c in configs} == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    for config in configs:
        assert config["Queue"] == {"Fn::GetAtt": ["UsageEventsQueue", "Arn"]}
        assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "users/"}]


def test_failed_events_are_retried_alone_then_dead_lettered(template: dict[str, Any]) -> None:
    queue = resource(template, "UsageEventsQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["UsageEventsDLQ", "Arn"]
    }
    function = resource(template, "UsageEventsFunction")
    # SQS wants the visibility timeout at least six times the function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    (event,) = function["Events"].values()
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


@pytest.mark.parametrize(
    "function", ["ApiFunction", "UsageEventsFunction", "ReservationSweeperFunction"]
)
def test_a_touch_lands_before_a_pass_may_check_past_it(
    template: dict[str, Any], function: str
) -> None:
    # These functions touch users; the hourly pass leaves marks this young for the next one.
    timeout = resource(template, function).get(
        "Timeout", template["Globals"]["Function"]["Timeout"]
    )
    assert timeout < WRITE_LAG_SECONDS


def statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in resource(template, function).get("Policies", []):
        found += policy.get("Statement", []) if "Statement" in policy else []
    return found


@pytest.mark.parametrize(
    "function",
    ["ApiFunction", "UsageEventsFunction", "ReservationSweeperFunction", "ReconcileFunction"],
)
def test_policies_are_least_privilege(template: dict[str, Any], function: str) -> None:
    for statement in statements(template, function):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert statement["Effect"] == "Allow"
        assert not any(a == "*" or a.endswith(":*") for a in actions), actions
        assert statement["Resource"] != "*"


def test_the_api_may_only_write_objects_under_users(template: dict[str, Any]) -> None:
    writes = [s for s in statements(template, "ApiFunction") if "s3:PutObject" in s["Action"]]
    assert [s["Resource"] for s in writes] == [{"Fn::Sub": "${UploadsBucket.Arn}/users/*"}]
    (listing,) = [s for s in statements(template, "ApiFunction") if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "users/*"}}


def test_the_routes_are_the_documented_api(template: dict[str, Any]) -> None:
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for e in resource(template, "ApiFunction")["Events"].values()
    }
    assert routes == {
        ("POST", "/uploads"),
        ("GET", "/usage"),
        ("GET", "/files"),
        ("GET", "/files/{key+}"),
        ("DELETE", "/files/{key+}"),
        ("PUT", "/admin/users/{userId}/quota"),
        ("POST", "/uploads/{uploadId}/parts"),
        ("GET", "/uploads/{uploadId}/parts"),
        ("POST", "/uploads/{uploadId}/complete"),
        ("DELETE", "/uploads/{uploadId}"),
    }
    auth = resource(template, "HttpApi")["Auth"]
    assert auth["DefaultAuthorizer"] == "CognitoAuthorizer"
    assert "JwtConfiguration" in auth["Authorizers"]["CognitoAuthorizer"]


def test_every_function_logs_with_retention(template: dict[str, Any]) -> None:
    groups = resources_of_type(template, "AWS::Logs::LogGroup").values()
    named = {g["Properties"].get("LogGroupName", {}).get("Fn::Sub") for g in groups}
    for function in resources_of_type(template, "AWS::Serverless::Function"):
        assert f"/aws/lambda/${{{function}}}" in named
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)


def test_the_ledger_table_has_its_sparse_indexes_stream_and_tombstone_ttl(
    template: dict[str, Any],
) -> None:
    table = resource(template, "LedgerTable")
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    keys = {
        name: [k["AttributeName"] for k in index["KeySchema"]] for name, index in indexes.items()
    }
    assert keys == {
        "ExpiringItems": ["expiryShard", "expiresAt"],
        "UsersByShard": ["expiryShard", "pk"],
    }
    # Only what the sweeper reads: writes that change nothing projected cost the index nothing.
    assert indexes["ExpiringItems"]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["objectKey", "s3UploadId"],
    }
    assert indexes["UsersByShard"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # The store-wide totals are kept from it (UsageTotalsFunction), never from a scan.
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


def test_parameters_and_outputs_a_deployer_needs(template: dict[str, Any]) -> None:
    assert {
        "DefaultQuotaBytes",
        "UploadUrlExpirySeconds",
        "AllowedContentTypes",
        "CapacityBytes",
        "UserAlertPercent",
        "SelfSignUp",
    } <= set(template["Parameters"])
    assert {"ApiUrl", "UserPoolId", "UserPoolClientId", "AlertsTopicArn"} <= set(
        template["Outputs"]
    )


def test_the_url_lifetime_parameter_stops_where_the_code_does(template: dict[str, Any]) -> None:
    # A URL signed with the function's temporary credentials dies with them (config.py).
    parameter = template["Parameters"]["UploadUrlExpirySeconds"]
    assert parameter["MaxValue"] == MAX_URL_EXPIRY_SECONDS
    assert 0 < parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"]


def evaluate(template: dict[str, Any], node: Any, parameters: dict[str, Any]) -> Any:
    """The intrinsic functions a condition needs, for one choice of parameter values."""
    if isinstance(node, list):
        return [evaluate(template, item, parameters) for item in node]
    if not (isinstance(node, dict) and len(node) == 1):
        return node
    ((fn, arg),) = node.items()
    if fn == "Ref":
        return parameters[arg]
    if fn == "Condition":
        return evaluate(template, template["Conditions"][arg], parameters)
    if fn == "Fn::Equals":
        left, right = evaluate(template, arg, parameters)
        return left == right
    if fn == "Fn::Not":
        return not evaluate(template, arg[0], parameters)
    if fn == "Fn::If":
        condition, if_true, if_false = arg
        chosen = evaluate(template, {"Condition": condition}, parameters)
        return evaluate(template, if_true if chosen else if_false, parameters)
    raise AssertionError(f"unexpected {fn} in a condition")


def test_self_sign_up_decides_whether_only_admins_create_users(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["SelfSignUp"]
    assert parameter["AllowedValues"] == ["Enabled", "Disabled"]
    # Open sign-up lets anyone claim DefaultQuotaBytes, so it is a deployer's explicit choice.
    assert parameter["Default"] == "Disabled"
    admin_only = resource(template, "UserPool")["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"]
    assert {
        choice: evaluate(template, admin_only, {"SelfSignUp": choice})
        for choice in parameter["AllowedValues"]
    } == {"Enabled": False, "Disabled": True}


ALARMS = {
    # alarm: (metric names it reads, comparison, threshold)
    "UserThresholdAlarm": ({"UsersOverThreshold"}, "GreaterThanOrEqualToThreshold", 1),
    "UserExhaustedAlarm": ({"UsersExhausted"}, "GreaterThanOrEqualToThreshold", 1),
    "CapacityAlarm": (
        {"BucketSizeBytes"},
        "GreaterThanOrEqualToThreshold",
        {"Ref": "CapacityAlarmPercent"},
    ),
    "CommittedCapacityAlarm": (
        {"CommittedBytes"},
        "GreaterThanOrEqualToThreshold",
        {"Ref": "CapacityAlarmPercent"},
    ),
    "DeadLetterAlarm": ({"ApproximateNumberOfMessagesVisible"}, "GreaterThanOrEqualToThreshold", 1),
    "FunctionErrorsAlarm": ({"Errors", "Throttles"}, "GreaterThanOrEqualToThreshold", 1),
    "Api5xxAlarm": ({"5xx", "Count"}, "GreaterThanThreshold", 1),
    "RejectionsAlarm": ({"UploadsRejected", "UploadsGranted"}, "GreaterThanThreshold", 20),
}


@pytest.mark.parametrize("alarm", sorted(ALARMS))
def test_each_alarm_watches_its_metric_and_notifies_the_topic(
    template: dict[str, Any], alarm: str
) -> None:
    props = resource(template, alarm)
    metrics, comparison, threshold = ALARMS[alarm]
    if "MetricName" in props:
        read = {props["MetricName"]}
    else:
        read = {
            m["MetricStat"]["Metric"]["MetricName"] for m in props["Metrics"] if "MetricStat" in m
        }
    assert read == metrics
    assert (props["ComparisonOperator"], props["Threshold"]) == (comparison, threshold)
    assert props["AlarmActions"] == [{"Ref": "AlertsTopic"}]
    assert props["TreatMissingData"] == "notBreaching"


def test_custom_metric_alarms_use_the_dimensions_powertools_emits(template: dict[str, Any]) -> None:
    # Powertools Metrics adds one dimension, service=POWERTOOLS_SERVICE_NAME, to every metric.
    service = template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    namespace = template["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]
    ours = []
    for alarm in ALARMS:
        props = resource(template, alarm)
        watched = [props] + [
            m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m
        ]
        ours += [metric for metric in watched if metric.get("Namespace") == namespace]
    assert {metric["MetricName"] for metric in ours} == {
        "UsersOverThreshold",
        "UsersExhausted",
        "CommittedBytes",
        "UploadsRejected",
        "UploadsGranted",
    }
    for metric in ours:
        assert metric["Dimensions"] == [{"Name": "service", "Value": service}]


def test_the_handler_serves_exactly_the_templates_routes(template: dict[str, Any]) -> None:
    import json

    from local_stack.functions import load_module

    module = load_module("functions/api", "app", "ApiFunction")
    served = {
        (method.upper(), path)
        for path, operations in json.loads(module.openapi_document())["paths"].items()
        for method in operations
    }
    declared = {
        (e["Properties"]["Method"], e["Properties"]["Path"].replace("+}", "}"))
        for e in resource(template, "ApiFunction")["Events"].values()
    }
    assert served == declared
