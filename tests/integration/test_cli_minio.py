"""Against the real MinIO: a wrong endpoint, a wrong key and a bad bucket name give one clear line and the
same exit code on every command that opens the lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.cli import main
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def commands(archive: Path) -> dict[str, list[str]]:
    return {
        "run": ["run", "--feeds", str(REPO / "config" / "samples.yaml"), "--date", "2026-11-20"],
        "validate": ["validate"],
        "files": ["files"],
        "compact": ["compact", "--from", "2026-11-20", "--to", "2026-11-20"],
        "backfill": ["backfill", "--archive", str(archive), "--from", "2026-11-20", "--to", "2026-11-20"],
    }


@pytest.mark.parametrize(
    ("case", "code", "expected"),
    [
        ("endpoint", 3, "retriable: open s3://{bucket}/lake/: object store unreachable or connection lost at "
         "http://127.0.0.1:{port} (check AWS_ENDPOINT_URL) (EndpointConnectionError)"),
        ("key", 2, "config: open s3://{bucket}/lake/: access key is not known to the object store (check "
         "AWS_ACCESS_KEY_ID) (InvalidAccessKeyId)"),
        ("secret", 2, "config: open s3://{bucket}/lake/: signature does not match (check "
         "AWS_SECRET_ACCESS_KEY) (SignatureDoesNotMatch)"),
        ("bucket name", 2, "config: invalid bucket name 'Wire_Lake' in lake 's3://Wire_Lake/lake': S3 bucket "
         "names are 3-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit"),
    ],
)  # fmt: skip
def test_one_clear_line_for_a_wrong_endpoint_key_or_bucket_on_every_command(
    case: str,
    code: int,
    expected: str,
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    lake = f"s3://{s3_bucket}/lake"
    if case == "endpoint":
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    elif case == "key":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "no-such-key")
    elif case == "secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    else:
        lake = "s3://Wire_Lake/lake"
    (tmp_path / "archive").mkdir()
    for name, argv in commands(tmp_path / "archive").items():
        assert main([*argv, "--lake", lake]) == code, name
        out = capsys.readouterr()
        assert out.err.splitlines() == [f"wirefeed {name}: " + expected.format(bucket=s3_bucket, port=port)]
        assert "not-the-secret" not in out.err + out.out


def test_a_bucket_that_does_not_exist_is_a_config_error_for_readers(
    s3_settings: object, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = "s3://wf-test-no-such-bucket/lake"
    for argv in (["validate"], ["files"], ["compact", "--from", "2026-11-20", "--to", "2026-11-20"]):
        assert main([*argv, "--lake", lake]) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [
            f"wirefeed {argv[0]}: config: open {lake}/: bucket does not exist (NoSuchBucket)"
        ]
