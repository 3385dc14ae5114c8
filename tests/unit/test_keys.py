import pytest

from quota_uploads.keys import (
    InvalidKey,
    new_upload_id,
    object_key,
    owner_of,
    sanitise_filename,
)

UPLOAD_ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("holiday.jpg", "holiday.jpg"),
        ("C:\\photos\\holiday.jpg", "holiday.jpg"),
        ("../../etc/passwd", "passwd"),
        ("..", "file"),
        (".hidden", "hidden"),
        ("my file (1).jpg", "my_file_(1).jpg"),
        ("naïve café.txt", "naïve_café.txt"),
        ("a?b#c%d&e.txt", "a_b_c_d_e.txt"),
        ("///", "file"),
    ],
)
def test_filenames_are_sanitised(given: str, expected: str) -> None:
    assert sanitise_filename(given) == expected


def test_long_filenames_are_cut_to_255_bytes_without_splitting_a_character() -> None:
    name = sanitise_filename("é" * 300)
    assert len(name.encode()) <= 255
    assert name == "é" * 127


def test_object_key_places_each_upload_under_its_user_and_upload_id() -> None:
    key = object_key("alice", UPLOAD_ID, "a b.jpg")
    assert key == f"users/alice/{UPLOAD_ID}/a_b.jpg"
    owner = owner_of(key)
    assert owner is not None
    assert (owner.sub, owner.upload_id) == ("alice", UPLOAD_ID)


def test_upload_ids_are_fresh() -> None:
    assert len({new_upload_id() for _ in range(1000)}) == 1000


@pytest.mark.parametrize("sub", ["", "a/b", "a b", "x" * 129])
def test_a_user_id_that_cannot_be_a_key_segment_is_refused(sub: str) -> None:
    with pytest.raises(InvalidKey):
        object_key(sub, UPLOAD_ID, "f.txt")


@pytest.mark.parametrize(
    "key",
    ["other/alice/x.bin", "users/alice/", "users/", "users/a b/x", "users/alice/" + "x" * 1020],
)
def test_keys_outside_the_scheme_have_no_owner(key: str) -> None:
    assert owner_of(key) is None


def test_a_key_without_an_upload_id_still_has_an_owner() -> None:
    owner = owner_of("users/alice/copied.bin")
    assert owner is not None
    assert (owner.sub, owner.upload_id) == ("alice", None)
