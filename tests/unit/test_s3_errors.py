"""s3_errors: every botocore error becomes the osp-ops error that says whether a retry helps."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from osp_ops.domain.errors import BackupError, ConfigError, NotFoundError, TemporaryError
from osp_ops.objects.s3 import s3_errors

pytestmark = pytest.mark.unit


def _client_error(code: str, status: int) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error("NoSuchKey", 404), NotFoundError),
        (_client_error("SlowDown", 503), TemporaryError),
        (_client_error("Whatever", 502), TemporaryError),
        (_client_error("AccessDenied", 403), BackupError),
        (EndpointConnectionError(endpoint_url="http://s3.invalid"), TemporaryError),
        (NoCredentialsError(), ConfigError),
        (ValueError("odd"), BackupError),
    ],
)
def test_translated_with_the_library_error_as_cause(error: Exception, expected: type) -> None:
    with pytest.raises(expected) as caught, s3_errors("cannot read k"):
        raise error
    assert type(caught.value) is expected and caught.value.__cause__ is error
    assert str(caught.value).startswith("cannot read k")


def test_ok_codes_end_the_block_quietly() -> None:
    def read() -> str:
        with s3_errors("cannot read k", ok={"InvalidRange"}):
            raise _client_error("InvalidRange", 416)
        return "after the block"

    assert read() == "after the block"
    with pytest.raises(BackupError), s3_errors("cannot read k", ok={"InvalidRange"}):
        raise _client_error("AccessDenied", 403)


def test_osp_ops_errors_pass_unchanged() -> None:
    mine = BackupError("source died")
    with pytest.raises(BackupError) as caught, s3_errors("cannot upload k"):
        raise mine
    assert caught.value is mine and caught.value.__cause__ is None
