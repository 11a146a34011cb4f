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
