import pytest
from pydantic import ValidationError

from quota_uploads.models import QuotaUpdate, UploadRequest

SHA256_OF_EMPTY = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def request(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"filename": "a.jpg", "size": 10, "contentType": "image/jpeg"}
    body.update(overrides)
    return body


def test_a_valid_request_parses_from_camel_case() -> None:
    parsed = UploadRequest.model_validate(request(checksumSha256=SHA256_OF_EMPTY))
    assert (parsed.size, parsed.content_type) == (10, "image/jpeg")
    assert parsed.checksum_sha256 == SHA256_OF_EMPTY


@pytest.mark.parametrize(
    "overrides",
    [
        {"size": -1},
        {"size": 1.5},
        {"size": "10"},
        {"size": True},
        {"size": None},
        {"filename": ""},
        {"filename": "   "},
        {"filename": "x" * 256},
        {"filename": "a\nb.jpg"},
        {"filename": "a\x00b"},
        {"contentType": "jpeg"},
        {"contentType": "image/jpeg\r\nX-Evil: 1"},
        {"checksumSha256": "not base64!"},
        {"checksumSha256": "AAAA"},
        {"unexpected": 1},
    ],
)
def test_invalid_requests_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        UploadRequest.model_validate(request(**overrides))


@pytest.mark.parametrize("missing", ["filename", "size", "contentType"])
def test_required_fields_are_required(missing: str) -> None:
    body = request()
    del body[missing]
    with pytest.raises(ValidationError):
        UploadRequest.model_validate(body)


def test_content_type_parameters_are_accepted() -> None:
    parsed = UploadRequest.model_validate(request(contentType="text/plain; charset=utf-8"))
    assert parsed.content_type == "text/plain; charset=utf-8"


def test_quota_update_takes_bytes_or_null_for_the_default() -> None:
    assert QuotaUpdate.model_validate({"quotaBytes": 5}).quota_bytes == 5
    assert QuotaUpdate.model_validate({"quotaBytes": None}).quota_bytes is None
    with pytest.raises(ValidationError):
        QuotaUpdate.model_validate({"quotaBytes": -5})
    with pytest.raises(ValidationError):
        QuotaUpdate.model_validate({})
