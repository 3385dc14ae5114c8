"""The API function end to end in-process: real handler, Powertools resolver, moto behind it."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BUCKET, QUOTA
from tests.support.lambdas import http_event, invoke, sample_event

ALICE = {"sub": "alice"}
BOB = {"sub": "bob"}
ADMIN = {"sub": "root", "cognito:groups": "[admins]"}


def call(method: str, path: str, claims: dict[str, Any] | None = ALICE, **kwargs: Any) -> Any:
    response = invoke("api", http_event(method, path, claims=claims, **kwargs))
    body = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], body


def upload(size: int, claims: dict[str, Any] = ALICE, **fields: Any) -> Any:
    body = {"filename": "holiday.jpg", "size": size, "contentType": "image/jpeg", **fields}
    return call("POST", "/uploads", claims, body=body)


@pytest.fixture(autouse=True)
def _moto(aws: None) -> None:
    """Every test here runs against a fresh in-process moto."""


def test_the_saved_sample_event_is_granted(monkeypatch: pytest.MonkeyPatch) -> None:
    from quota_uploads import wiring

    monkeypatch.setenv("DEFAULT_QUOTA_BYTES", str(1024**3))
    wiring.reset()
    response = invoke("api", sample_event("http_post_uploads"))
    assert response["statusCode"] == 201
    body = json.loads(response["body"])
    sub = sample_event("http_post_uploads")["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    assert body["key"].startswith(f"users/{sub}/{body['uploadId']}/")


def test_a_grant_returns_a_signed_put_and_reserves_the_size() -> None:
    status, body = upload(300)
    assert status == 201
    assert body["method"] == "PUT"
    assert body["key"] == f"users/alice/{body['uploadId']}/holiday.jpg"
    assert body["headers"]["Content-Length"] == "300"
    assert body["headers"]["Content-Type"] == "image/jpeg"
    query = parse_qs(urlsplit(body["url"]).query)
    assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Expires"] == ["900"]
    assert body["expiresAt"].endswith("Z")
    assert body["usage"]["reservedBytes"] == 300
    assert call("GET", "/usage")[1]["reservedBytes"] == 300


def test_over_quota_is_507_with_the_usage() -> None:
    upload(QUOTA - 100)
    status, body = upload(101)
    assert status == 507
    assert body == {
        "error": "Insufficient Storage",
        "message": body["message"],
        "usedBytes": 0,
        "reservedBytes": QUOTA - 100,
        "quotaBytes": QUOTA,
        "requestedBytes": 101,
        "availableBytes": 100,
    }
    assert "Delete files" in body["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"filename": "a.jpg", "contentType": "image/jpeg"},
        {"filename": "a.jpg", "size": -1, "contentType": "image/jpeg"},
        {"filename": "a.jpg", "size": 1.5, "contentType": "image/jpeg"},
        {"filename": "a.jpg", "size": "12", "contentType": "image/jpeg"},
        {"filename": "", "size": 1, "contentType": "image/jpeg"},
        {"filename": "x" * 256, "size": 1, "contentType": "image/jpeg"},
        {"filename": "a\tb.jpg", "size": 1, "contentType": "image/jpeg"},
        {"filename": "a.jpg", "size": 1, "contentType": "nonsense"},
        {"filename": "a.jpg", "size": 1},
        ["not", "an", "object"],
        "text",
    ],
)
def test_invalid_upload_requests_are_400_json(body: Any) -> None:
    status, answer = call("POST", "/uploads", body=body)
    assert status == 400
    assert answer["error"] == "Bad Request"
    assert answer["message"]


@pytest.mark.parametrize("raw", ["{", "", "null", "\x00"])
def test_unparseable_bodies_are_400(raw: str) -> None:
    status, answer = call("POST", "/uploads", raw_body=raw)
    assert status == 400
    assert answer["error"] == "Bad Request"


def test_a_size_above_the_largest_object_is_413() -> None:
    status, body = upload(5 * 1024**4 + 1)
    assert status == 413
    assert "5 TiB" in body["message"]


def test_a_size_above_the_single_put_limit_gets_a_multipart_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from quota_uploads import wiring

    monkeypatch.setenv("DEFAULT_QUOTA_BYTES", str(6 * 1024**3))
    monkeypatch.setenv("MULTIPART_THRESHOLD_BYTES", str(10 * 1024**3))
    wiring.reset()
    status, body = upload(5 * 1024**3 + 1)
    assert (status, body["method"]) == (201, "MULTIPART")
    assert body["partCount"] == 81


def test_a_content_type_outside_the_allow_list_is_400(monkeypatch: pytest.MonkeyPatch) -> None:
    from quota_uploads import wiring

    monkeypatch.setenv("ALLOWED_CONTENT_TYPES", "image/png, image/jpeg")
    wiring.reset()
    assert upload(1, contentType="image/JPEG; q=1")[0] == 201
    status, body = upload(1, contentType="application/x-msdownload")
    assert status == 400
    assert "image/png" in body["message"]


@pytest.mark.parametrize("claims", [None, {}, {"sub": ""}, {"sub": "a/b"}])
def test_without_a_verified_identity_every_route_is_401(claims: dict[str, Any] | None) -> None:
    for method, path in [("GET", "/usage"), ("GET", "/files"), ("DELETE", "/files/x")]:
        status, body = call(method, path, claims)
        assert status == 401, (method, path)
        assert body["error"] == "Unauthorized"
    assert upload(1, claims)[0] == 401  # type: ignore[arg-type]


def test_unknown_routes_are_404_json() -> None:
    status, body = call("GET", "/nope")
    assert (status, body["error"]) == (404, "Not Found")


def put_object(key: str, size: int) -> None:
    import boto3

    boto3.client("s3").put_object(Bucket=BUCKET, Key=key, Body=b"x" * size)


def test_files_are_listed_page_by_page_and_only_the_callers() -> None:
    for index in range(5):
        put_object(f"users/alice/{index:032x}/f{index}.txt", index)
    put_object(f"users/bob/{0:032x}/secret.txt", 1)
    seen: list[dict[str, Any]] = []
    token = None
    while True:
        query = {"limit": "2", **({"nextToken": quote(token, safe="")} if token else {})}
        status, body = call("GET", "/files", query=query)
        assert status == 200
        assert len(body["files"]) <= 2
        seen += body["files"]
        token = body.get("nextToken")
        if not token:
            break
    assert [f["filename"] for f in seen] == [f"f{i}.txt" for i in range(5)]
    assert [f["size"] for f in seen] == list(range(5))
    assert all(f["uploadedAt"].endswith("Z") for f in seen)


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}])
def test_a_bad_page_size_is_400(query: dict[str, str]) -> None:
    assert call("GET", "/files", query=query)[0] == 400


def test_deleting_ones_own_file_is_204_and_anything_else_404() -> None:
    mine = f"users/alice/{1:032x}/mine.txt"
    theirs = f"users/bob/{2:032x}/theirs.txt"
    put_object(mine, 3)
    put_object(theirs, 3)
    route = "/files/{key+}"
    assert call("DELETE", f"/files/{quote(theirs, safe='')}", route=route)[0] == 404
    assert call("DELETE", f"/files/{quote(mine, safe='')}", route=route)[0] == 204
    status, body = call("DELETE", f"/files/{quote(mine, safe='')}", route=route)
    assert (status, body["error"]) == (404, "Not Found")
    assert call("DELETE", "/files/..%2F..%2Fetc", route=route)[0] == 404
    import boto3

    assert boto3.client("s3").head_object(Bucket=BUCKET, Key=theirs)["ContentLength"] == 3


def test_a_download_url_gets_ones_own_file_under_its_name_and_anything_else_is_404() -> None:
    import requests

    mine = f'users/alice/{1:032x}/résumé "final".txt'
    theirs = f"users/bob/{2:032x}/theirs.txt"
    put_object(mine, 5)
    put_object(theirs, 3)
    route = "/files/{key+}"
    status, body = call("GET", f"/files/{quote(mine, safe='')}", route=route)
    assert status == 200
    assert (body["key"], body["filename"], body["size"]) == (mine, 'résumé "final".txt', 5)
    assert body["expiresAt"].endswith("Z")
    fetched = requests.get(body["url"], timeout=10)
    assert (fetched.status_code, fetched.content) == (200, b"xxxxx")
    assert fetched.headers["Content-Disposition"] == (
        'attachment; filename="r_sum_ _final_.txt"; '
        "filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.txt"
    )
    for key in (theirs, f"users/alice/{3:032x}/missing.txt", "../../etc"):
        assert call("GET", f"/files/{quote(key, safe='')}", route=route)[0] == 404


def test_the_saved_quota_event_lets_an_admin_set_a_quota() -> None:
    response = invoke("api", sample_event("http_put_quota"))
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["quotaBytes"] == 2147483648


def test_admins_set_quotas_and_others_get_403() -> None:
    route = "/admin/users/{userId}/quota"
    path = "/admin/users/alice/quota"
    assert call("PUT", path, ALICE, route=route, body={"quotaBytes": 5000})[0] == 403
    status, body = call("PUT", path, ADMIN, route=route, body={"quotaBytes": 5000})
    assert (status, body) == (200, {"userId": "alice", "quotaBytes": 5000, "isDefault": False})
    assert upload(4000)[0] == 201
    listed = {"sub": "root", "cognito:groups": ["admins"]}
    status, body = call("PUT", path, listed, route=route, body={"quotaBytes": None})
    assert (status, body["isDefault"], body["quotaBytes"]) == (200, True, QUOTA)
    assert call("GET", "/usage")[1]["quotaBytes"] == QUOTA
    assert call("PUT", path, ADMIN, route=route, body={"quotaBytes": -1})[0] == 400
    assert (
        call("PUT", "/admin/users/a%20b/quota", ADMIN, route=route, body={"quotaBytes": 1})[0]
        == 400
    )


bodies = st.one_of(
    st.none(),
    st.text(max_size=50),
    st.dictionaries(
        st.sampled_from(["filename", "size", "contentType", "checksumSha256", "x"]),
        st.one_of(st.integers(), st.text(max_size=300), st.floats(), st.none(), st.booleans()),
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_any_body_is_granted_or_refused_never_a_500(body: Any) -> None:
    """Whatever JSON or text arrives, a grant or a refusal in the API's error shape (a request
    with no body at all is in the hostile corpus: 400)."""
    raw = body if isinstance(body, str) else json.dumps(body)
    status, answer = call("POST", "/uploads", raw_body=raw)
    assert status in {201, 400, 413, 507}
    assert isinstance(answer, dict)
    if status != 201:
        assert set(answer) >= {"error", "message"}


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Multipart from 100 bytes in 40-byte parts (moto is told to accept parts that small)."""
    from quota_uploads import wiring

    monkeypatch.setenv("MULTIPART_THRESHOLD_BYTES", "100")
    monkeypatch.setenv("MULTIPART_PART_BYTES", "40")
    monkeypatch.setenv("MULTIPART_MIN_PART_BYTES", "1")
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1)
    wiring.reset()


def put_parts(upload_id: str, data: bytes, claims: dict[str, Any] = ALICE) -> list[dict[str, Any]]:
    import requests

    count = -(-len(data) // 40)
    status, signed = call(
        "POST",
        f"/uploads/{upload_id}/parts",
        claims,
        route="/uploads/{uploadId}/parts",
        body={"partNumbers": list(range(1, count + 1))},
    )
    assert status == 200, signed
    done = []
    for part in signed["parts"]:
        number = part["partNumber"]
        chunk = data[(number - 1) * 40 : number * 40]
        assert part["headers"] == {"Content-Length": str(len(chunk))}
        query = parse_qs(urlsplit(part["url"]).query)
        assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
        answer = requests.put(part["url"], data=chunk, headers=part["headers"], timeout=5)
        assert answer.status_code == 200
        done.append({"partNumber": number, "etag": answer.headers["ETag"].strip('"')})
    return done


@pytest.mark.usefixtures("small_parts")
def test_a_multipart_upload_from_plan_to_object() -> None:
    status, grant = upload(250)
    assert (status, grant["method"]) == (201, "MULTIPART")
    assert (grant["partSize"], grant["partCount"]) == (40, 7)
    assert grant["usage"]["reservedBytes"] == 250
    upload_id = grant["uploadId"]

    parts = put_parts(upload_id, bytes(range(250)))
    status, listed = call("GET", f"/uploads/{upload_id}/parts", route="/uploads/{uploadId}/parts")
    assert [p["size"] for p in listed["parts"]] == [40] * 6 + [10]

    status, done = call(
        "POST",
        f"/uploads/{upload_id}/complete",
        route="/uploads/{uploadId}/complete",
        body={"parts": parts},
    )
    assert status == 200, done
    assert (done["key"], done["size"]) == (grant["key"], 250)
    import boto3

    stored = boto3.client("s3").get_object(Bucket=BUCKET, Key=grant["key"])["Body"].read()
    assert stored == bytes(range(250))


@pytest.mark.usefixtures("small_parts")
def test_parts_outside_the_plan_cannot_be_signed_and_others_uploads_are_404() -> None:
    _, grant = upload(250)
    route = "/uploads/{uploadId}/parts"
    path = f"/uploads/{grant['uploadId']}/parts"
    assert call("POST", path, route=route, body={"partNumbers": [8]})[0] == 400
    assert call("POST", path, route=route, body={"partNumbers": [0]})[0] == 400
    assert call("POST", path, BOB, route=route, body={"partNumbers": [1]})[0] == 404
    assert call("POST", "/uploads/nope/parts", route=route, body={"partNumbers": [1]})[0] == 404


@pytest.mark.usefixtures("small_parts")
def test_completing_with_parts_never_uploaded_is_400() -> None:
    status, grant = upload(120)
    parts = put_parts(grant["uploadId"], b"p" * 120)
    parts[0]["etag"] = "0" * 32
    status, body = call(
        "POST",
        f"/uploads/{grant['uploadId']}/complete",
        route="/uploads/{uploadId}/complete",
        body={"parts": parts},
    )
    assert status == 400
    assert "[1]" in body["message"]


@pytest.mark.usefixtures("small_parts")
def test_completing_an_upload_aborted_meanwhile_is_404(monkeypatch: pytest.MonkeyPatch) -> None:
    from quota_uploads import wiring

    _, grant = upload(120)
    parts = put_parts(grant["uploadId"], b"p" * 120)
    s3 = wiring.s3()

    def aborted_meanwhile(**_: Any) -> Any:
        # What S3 answers when an abort lands between ListParts and the completion.
        raise s3.exceptions.NoSuchUpload(
            {"Error": {"Code": "NoSuchUpload", "Message": "The upload does not exist"}},
            "CompleteMultipartUpload",
        )

    monkeypatch.setattr(s3, "complete_multipart_upload", aborted_meanwhile)
    status, body = call(
        "POST",
        f"/uploads/{grant['uploadId']}/complete",
        route="/uploads/{uploadId}/complete",
        body={"parts": parts},
    )
    assert (status, body["error"]) == (404, "Not Found")


@pytest.mark.usefixtures("small_parts")
def test_aborting_releases_the_reservation_at_once() -> None:
    status, grant = upload(900)
    assert call("GET", "/usage")[1]["reservedBytes"] == 900
    path = f"/uploads/{grant['uploadId']}"
    assert call("DELETE", path, route="/uploads/{uploadId}")[0] == 204
    assert call("GET", "/usage")[1]["reservedBytes"] == 0
    assert call("DELETE", path, route="/uploads/{uploadId}")[0] == 404
    status, _ = call(
        "POST",
        f"{path}/complete",
        route="/uploads/{uploadId}/complete",
        body={"parts": [{"partNumber": 1, "etag": "x"}]},
    )
    assert status == 404


@pytest.mark.usefixtures("small_parts")
def test_a_multipart_upload_over_quota_is_507_and_leaves_nothing_open() -> None:
    status, _ = upload(1001)
    assert status == 507
    import boto3

    assert boto3.client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


@pytest.mark.usefixtures("small_parts")
def test_the_sweeper_aborts_an_abandoned_multipart_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from quota_uploads import wiring
    from tests.support.lambdas import sample_event

    monkeypatch.setenv("MULTIPART_RESERVATION_SECONDS", "0")
    wiring.reset()
    status, _ = upload(500)
    assert status == 201
    s3 = boto3.client("s3")
    assert len(s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]) == 1
    swept = invoke("reservation_sweeper", sample_event("schedule"))
    assert (swept["reservations"], swept["uploads_aborted"], swept["failures"]) == (1, 1, 0)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert call("GET", "/usage")[1]["reservedBytes"] == 0


@pytest.mark.usefixtures("small_parts")
def test_a_client_may_choose_multipart_and_its_part_size() -> None:
    status, grant = upload(90, multipart=True, partSize=30)
    assert (status, grant["method"], grant["partSize"], grant["partCount"]) == (
        201,
        "MULTIPART",
        30,
        3,
    )
    status, grant = upload(250, multipart=False)
    assert (status, grant["method"]) == (201, "PUT")
    assert upload(250, partSize=0)[0] == 400
    assert upload(10**9, partSize=1)[0] == 400  # over 10,000 parts


def test_parts_below_s3s_floor_are_refused() -> None:
    status, body = upload(900, multipart=True, partSize=100)
    assert status == 400
    assert "partSize" in body["message"]


def test_cancelling_a_single_put_releases_it_at_once_and_only_the_callers() -> None:
    status, grant = upload(600)
    assert (status, grant["method"]) == (201, "PUT")
    path = f"/uploads/{grant['uploadId']}"
    assert call("DELETE", path, {"sub": "bob"}, route="/uploads/{uploadId}")[0] == 404
    assert call("GET", "/usage")[1]["reservedBytes"] == 600
    assert call("DELETE", path, route="/uploads/{uploadId}")[0] == 204
    assert call("GET", "/usage")[1]["reservedBytes"] == 0
    assert call("DELETE", path, route="/uploads/{uploadId}")[0] == 404
