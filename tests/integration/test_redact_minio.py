"""Secrets of an S3 lake never reach the logs, even at -vv where botocore logs every request it signs."""

from __future__ import annotations

import os
import subprocess
import sys

import boto3
import pytest

from pipeline.config import Settings
from tests.conftest import REPO

pytestmark = pytest.mark.integration


def test_debug_logs_of_an_s3_run_hold_no_credentials(s3_settings: Settings, s3_lake_uri: str) -> None:
    s3 = s3_settings.s3
    sts = boto3.client(
        "sts",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        region_name=s3.region,
    )
    # temporary credentials with a session token, as on AWS with an assumed role (MinIO's STS)
    creds = sts.assume_role(RoleArn="arn:xxx:xxx:xxx:xxxx", RoleSessionName="wirefeed-test")["Credentials"]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WIREFEED_"))},
        "AWS_ENDPOINT_URL": str(s3.endpoint_url),
        "AWS_DEFAULT_REGION": s3.region,
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }
    args = ["-vv", "run", "--feeds", str(REPO / "config" / "samples.yaml"), "--lake", s3_lake_uri]
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args, "--date", "2026-11-20"],
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"botocore" in done.stderr  # the debug output is there...
    for secret in (creds["SecretAccessKey"], creds["SessionToken"]):
        assert secret.encode() not in done.stdout + done.stderr  # ...without the secrets in it
