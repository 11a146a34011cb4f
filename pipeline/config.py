"""One typed configuration object, from an optional YAML file and WIREFEED_* / AWS_* environment variables.

Precedence: explicit arguments (CLI flags) > environment > file > defaults. Validated at start-up (numbers
finite and within their bounds, the S3 endpoint a URL); secrets are kept out of repr(), and loading arms
pipeline.redact for the process (secret parameter names and the S3 secrets are masked in all logs).

pydantic-settings (in the lock for Airflow) was tried for this object and not adopted: its sources cannot
take the environment as an argument (tests, Airflow), the AWS_* fallbacks and WIREFEED_FEEDS need custom
sources anyway, so what remained was pydantic's field constraints, at +0.3 s import time for every
`wirefeed` command; the bounds table below gives the same strictness.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pipeline import __version__, redact
from pipeline.errors import ConfigError

DEFAULT_LAKE = "./lake"
DEFAULT_FEEDS = "config/feeds.yaml"


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Settings:
    lake: str = DEFAULT_LAKE
    feeds_file: str = DEFAULT_FEEDS
    # fetching
    connect_timeout: float = 10.0
    total_timeout: float = 60.0
    max_body_bytes: int = 15 * 1024 * 1024
    max_redirects: int = 5
    max_retries: int = 3
    backoff_base: float = 1.0
    max_retry_after: float = 300.0
    # who feed publishers can reach about our requests (an e-mail address or URL), sent in the User-Agent
    contact: str = ""
    user_agent: str = ""  # a whole User-Agent of your own; "" = http_user_agent() builds it with `contact`
    allow_private_addresses: bool = False
    # networks allowed even with allow_private_addresses off, e.g. ("127.0.0.1/32",) for local feeds
    allowed_private_networks: tuple[str, ...] = ()
    fetch_concurrency: int = 8
    per_host_concurrency: int = 2
    # a run fails only when the share of failed feeds exceeds this (1.0: only when all failed)
    max_failed_share: float = 1.0
    # CPU seconds one input may take to parse, normalize and tag before it is recorded as too_slow (0: none)
    parse_budget: float = 60.0
    # query parameters whose values are secrets, added to pipeline.redact.DEFAULT_SECRET_PARAMS
    secret_params: tuple[str, ...] = ()
    s3: S3Settings = field(default_factory=S3Settings)

    @classmethod
    def load(
        cls, file: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        file = file or env.get("WIREFEED_CONFIG")
        if file:
            values.update(_read_file(Path(file)))
        values.update(_from_env(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        s3 = S3Settings(
            endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
        )
        settings = cls(**{**values, "s3": values.get("s3", s3)})
        settings.check()
        settings.arm_redaction()
        return settings

    def arm_redaction(self) -> None:
        """Make pipeline.redact mask this configuration's secrets in this process (Settings.load does it; a
        worker process that received the Settings pickled calls it)."""
        redact.configure(self.secret_params, (self.s3.secret_access_key, self.s3.session_token))

    def http_user_agent(self) -> str:
        """The User-Agent sent with every fetch: the project, its version and the contact setting."""
        if self.user_agent:
            return self.user_agent
        contact = f"; +{self.contact}" if self.contact else ""
        return f"wirefeed/{__version__} (wire-feed ingestion{contact})"

    def with_(self, **changes: Any) -> Settings:
        new = replace(self, **changes)
        new.check()
        if "s3" in changes or "secret_params" in changes:  # e.g. S3 keys from an Airflow connection
            new.arm_redaction()
        return new

    def check(self) -> None:
        for name, (low, high, low_allowed) in _BOUNDS.items():
            value = getattr(self, name)
            bad_low = value < low if low_allowed else value <= low
            if not math.isfinite(value) or bad_low or (high is not None and value > high):
                span = f"{'>=' if low_allowed else '>'} {low:g}" + (
                    f" and <= {high:g}" if high is not None else ""
                )
                raise ConfigError(f"{name} must be a finite number {span}, not {value!r}", field=name)
        if not self.lake:
            raise ConfigError("lake must not be empty", field="lake")
        for name in ("contact", "user_agent"):  # sent as a header: printable ASCII only
            value = getattr(self, name)
            if any(not " " <= ch <= "~" for ch in value):
                raise ConfigError(f"{name} must be printable ASCII", field=name)
        for network in self.allowed_private_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"not a network: {network!r}", field="allowed_private_networks") from None
        _check_endpoint(self.s3.endpoint_url)


# field -> (low, high or None, whether low itself is allowed); every one must also be finite
_BOUNDS: dict[str, tuple[float, float | None, bool]] = {
    "connect_timeout": (0, None, False),
    "total_timeout": (0, None, False),
    "max_body_bytes": (0, None, False),
    "fetch_concurrency": (0, 1024, False),
    "per_host_concurrency": (0, 1024, False),
    "max_redirects": (0, 20, True),
    "max_retries": (0, 100, True),
    "backoff_base": (0, None, True),
    "max_retry_after": (0, None, True),
    "max_failed_share": (0, 1, True),
    "parse_budget": (0, None, True),
}


def _check_endpoint(endpoint: str | None) -> None:
    """An S3 endpoint is an http(s) URL with a host (boto3 raises a bare ValueError otherwise)."""
    if endpoint is None:
        return
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"S3 endpoint {endpoint!r} is not a URL: {exc}", field="endpoint_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"S3 endpoint {endpoint!r} must be an http(s) URL such as http://127.0.0.1:9000",
            field="endpoint_url",
        )


_ENV_KEYS = {
    "WIREFEED_LAKE": "lake",
    "WIREFEED_FEEDS": "feeds_file",
    "WIREFEED_CONNECT_TIMEOUT": "connect_timeout",
    "WIREFEED_TOTAL_TIMEOUT": "total_timeout",
    "WIREFEED_MAX_BODY_BYTES": "max_body_bytes",
    "WIREFEED_MAX_REDIRECTS": "max_redirects",
    "WIREFEED_MAX_RETRIES": "max_retries",
    "WIREFEED_BACKOFF_BASE": "backoff_base",
    "WIREFEED_MAX_RETRY_AFTER": "max_retry_after",
    "WIREFEED_USER_AGENT": "user_agent",
    "WIREFEED_CONTACT": "contact",
    "WIREFEED_ALLOW_PRIVATE_ADDRESSES": "allow_private_addresses",
    "WIREFEED_ALLOWED_PRIVATE_NETWORKS": "allowed_private_networks",
    "WIREFEED_FETCH_CONCURRENCY": "fetch_concurrency",
    "WIREFEED_PER_HOST_CONCURRENCY": "per_host_concurrency",
    "WIREFEED_MAX_FAILED_SHARE": "max_failed_share",
    "WIREFEED_PARSE_BUDGET": "parse_budget",
    "WIREFEED_SECRET_PARAMS": "secret_params",
}
_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, raw: Any) -> Any:
    typ = str(_TYPES[name])
    try:
        if typ == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if typ == "int":
            return int(raw)
        if typ == "float":
            return float(raw)
        if typ == "tuple[str, ...]":
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {typ}, got {raw!r}", field=name) from None


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {name: _coerce(name, env[key]) for key, name in _ENV_KEYS.items() if key in env}


def read_yaml_file(path: Path, what: str) -> Any:
    """The YAML document of a configuration file; ConfigError (naming `what` and the path) when it cannot be
    read, is not UTF-8, is not YAML or nests too deep."""
    try:
        return yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 (byte {exc.start}: {exc.reason})", path=str(path), byte=exc.start
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}", path=str(path)) from None
    except RecursionError:
        raise ConfigError(f"{what} {path} nests too deep", path=str(path)) from None


def _read_file(path: Path) -> dict[str, Any]:
    doc = read_yaml_file(path, "config file") or {}
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {path} must be a mapping", path=str(path))
    unknown = sorted(set(doc) - set(_TYPES) - {"s3"})
    if unknown:
        raise ConfigError(f"config file {path}: unknown settings {unknown}", path=str(path), fields=unknown)
    return {k: _coerce(k, v) for k, v in doc.items() if k != "s3"}
