import pytest

from fulfill_carriers import SignatureError, sign, verify

BODY = b'{"event": "delivered"}'


def test_a_signed_body_verifies() -> None:
    header = sign(BODY, "s3cret", timestamp=1_700_000_000)
    assert verify(BODY, header, "s3cret", now=1_700_000_010) == 1_700_000_000


@pytest.mark.parametrize(
    ("body", "secret", "now", "message"),
    [
        (b'{"event": "lost"}', "s3cret", 1_700_000_010, "does not match"),
        (BODY, "other", 1_700_000_010, "does not match"),
        (BODY, "s3cret", 1_700_000_301, "tolerance"),
        (BODY, "s3cret", 1_699_999_600, "tolerance"),
    ],
)
def test_tampered_stale_or_foreign_signatures_are_refused(
    body: bytes, secret: str, now: int, message: str
) -> None:
    header = sign(BODY, "s3cret", timestamp=1_700_000_000)
    with pytest.raises(SignatureError, match=message):
        verify(body, header, secret, now=now)


@pytest.mark.parametrize("header", [None, "", "garbage", "t=abc,v1=00", "t=1700000000"])
def test_malformed_headers_are_refused(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify(BODY, header, "s3cret", now=1_700_000_000)


def test_a_rotated_secret_can_be_accepted_alongside_the_old_one() -> None:
    old = sign(BODY, "old", timestamp=1_700_000_000)
    new = sign(BODY, "new", timestamp=1_700_000_000)
    both = f"{new},{old.split(',')[1]}"
    assert verify(BODY, both, "old", now=1_700_000_000) == 1_700_000_000


def test_nothing_verifies_without_a_secret_and_odd_headers_are_refused_not_crashed() -> None:
    body = b'{"a": 1}'
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify(body, sign(body, ""), "")
    with pytest.raises(SignatureError, match="does not match"):
        verify(body, "t=1700000000,v1=é", "s", now=1_700_000_000)
