import logging
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError


def test_env_overrides_file_and_flags_override_env(tmp_path: Path) -> None:
    cfg = tmp_path / "wirefeed.yaml"
    cfg.write_text("lake: s3://from-file/x\nmax_redirects: 3\n")
    env = {"WIREFEED_LAKE": "s3://from-env/y", "WIREFEED_ALLOW_PRIVATE_ADDRESSES": "yes"}
    s = Settings.load(cfg, env=env)
    assert (s.lake, s.max_redirects, s.allow_private_addresses) == ("s3://from-env/y", 3, True)
    assert Settings.load(cfg, env=env, lake="/tmp/flag").lake == "/tmp/flag"


def test_invalid_values_are_rejected_with_the_field_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.load(env={"WIREFEED_MAX_BODY_BYTES": "lots"})
    assert err.value.fields["field"] == "max_body_bytes"
    with pytest.raises(ConfigError):
        Settings.load(env={"WIREFEED_MAX_FAILED_SHARE": "1.5"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("lake: ./x\nunknown_key: 1\n")
    with pytest.raises(ConfigError, match="unknown_key"):
        Settings.load(bad, env={})


def test_secrets_stay_out_of_repr(caplog: pytest.LogCaptureFixture) -> None:
    s = Settings.load(env={"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"})
    assert s.s3.secret_access_key == "s3cr3t-value"
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("settings %s", s)
    assert "s3cr3t-value" not in repr(s) and "s3cr3t-value" not in caplog.text


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"WIREFEED_TOTAL_TIMEOUT": "inf"}, "total_timeout"),
        ({"WIREFEED_CONNECT_TIMEOUT": "nan"}, "connect_timeout"),
        ({"WIREFEED_BACKOFF_BASE": "-1"}, "backoff_base"),
        ({"WIREFEED_BACKOFF_BASE": "nan"}, "backoff_base"),
        ({"WIREFEED_MAX_RETRY_AFTER": "-5"}, "max_retry_after"),
        ({"WIREFEED_MAX_RETRY_AFTER": "nan"}, "max_retry_after"),
        ({"WIREFEED_MAX_RETRIES": "-1"}, "max_retries"),
        ({"WIREFEED_PARSE_BUDGET": "inf"}, "parse_budget"),
        ({"WIREFEED_USER_AGENT": "a\r\nX-Injected: 1"}, "user_agent"),
        ({"AWS_ENDPOINT_URL": "127.0.0.1:9000"}, "endpoint_url"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:99999"}, "endpoint_url"),
        ({"AWS_ENDPOINT_URL_S3": "minio:9000"}, "endpoint_url"),
    ],
)
def test_non_finite_negative_and_malformed_settings_are_config_errors(
    env: dict[str, str], field: str
) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.load(env=env)
    assert err.value.fields["field"] == field


def test_zero_budget_and_retries_are_allowed_and_secret_params_add_up() -> None:
    s = Settings.load(env={"WIREFEED_PARSE_BUDGET": "0", "WIREFEED_SECRET_PARAMS": "sub-key, x_auth"})
    assert (s.parse_budget, s.secret_params) == (0.0, ("sub-key", "x_auth"))
    from pipeline.redact import redact_url, set_secret_params

    try:
        assert redact_url("https://h/?sub_key=1&api_key=2") == "https://h/?sub_key=REDACTED&api_key=REDACTED"
    finally:
        set_secret_params(())


@pytest.mark.parametrize("content", [b"lake: \xff\xfe./x\n", b"lake: " + b"[" * 100_000])
def test_unreadable_config_files_are_config_errors(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match=str(bad)):
        Settings.load(bad, env={})


def test_loading_settings_masks_the_s3_secrets_in_every_log(caplog: pytest.LogCaptureFixture) -> None:
    Settings.load(env={"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-secret", "AWS_SESSION_TOKEN": "FwoGZX-token"})
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("botocore.auth").debug("x-amz-security-token:FwoGZX-token key wJalrXUtnFEMI-secret")
    assert "FwoGZX-token" not in caplog.text and "wJalrXUtnFEMI-secret" not in caplog.text


def test_secrets_set_later_are_masked_too(caplog: pytest.LogCaptureFixture) -> None:
    """Airflow tasks take the S3 keys from a connection after Settings.load (settings_in_airflow)."""
    from pipeline.config import S3Settings

    Settings.load(env={}).with_(
        s3=S3Settings(secret_access_key="conn-secret-1234", session_token="conn-tok-99")
    )
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("botocore.auth").debug("token conn-tok-99 secret conn-secret-1234")
    assert "conn-tok-99" not in caplog.text and "conn-secret-1234" not in caplog.text
