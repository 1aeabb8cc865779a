"""A job's secrets (the InfluxDB token, the Kafka password), read from a file or Google Secret Manager
(stdlib only), cached per process.

A Secret Manager secret may have no version yet: the scoped InfluxDB token is created by the InfluxDB VM
once InfluxDB is set up, which can be after the job starts. Reading it waits, bounded by
`TokenSource.wait_seconds`, and then fails naming the secret.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

METADATA_TOKEN_URL = (
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
)
SECRET_MANAGER_URL = "https://secretmanager.googleapis.com/v1"
_TIMEOUT_SECONDS = 10.0
# Secret Manager's answers while a secret has no enabled version: NOT_FOUND (none yet) and
# FAILED_PRECONDITION (the latest is disabled or destroyed).
_NO_VERSION_YET = (404, 400)


class TokenError(RuntimeError):
    """The token could not be read; the message never contains the token."""


@dataclass(frozen=True)
class TokenSource:
    """Where a secret lives: a file path, or a Secret Manager version name. Plain and picklable."""

    file: str | None = None
    secret: str | None = None
    what: str = "InfluxDB token"            # what the secret is, in messages
    option: str = "--influx-token"          # the command line's option prefix (-file, -secret)
    metadata_token_url: str = METADATA_TOKEN_URL
    secret_manager_url: str = SECRET_MANAGER_URL
    wait_seconds: float = 600.0   # how long a secret without a version is waited for
    retry_seconds: float = 10.0


_cache: dict[TokenSource, str] = {}


def _get_json(request: urllib.request.Request) -> dict:
    with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
        return json.loads(response.read())


def _read_secret(source: TokenSource) -> str:
    name = source.secret or ""
    if not name.startswith("projects/") or "/secrets/" not in name or "/versions/" not in name:
        raise TokenError(f"{source.option}-secret must look like projects/P/secrets/S/versions/V")
    metadata = urllib.request.Request(source.metadata_token_url, headers={"Metadata-Flavor": "Google"})
    deadline = time.monotonic() + source.wait_seconds
    while True:
        try:
            # A fresh access token each attempt: a long wait may outlive one.
            access_token = _get_json(metadata)["access_token"]
            access = urllib.request.Request(
                f"{source.secret_manager_url}/{name}:access",
                headers={"Authorization": f"Bearer {access_token}"},
            )
            payload = _get_json(access)["payload"]["data"]
            return base64.b64decode(payload).decode("utf-8").strip()
        except urllib.error.HTTPError as error:
            if error.code not in _NO_VERSION_YET:
                raise TokenError(f"cannot read secret {name}: HTTP {error.code}") from None
            if time.monotonic() + source.retry_seconds > deadline:
                raise TokenError(
                    f"secret {name} ({source.what}) has no enabled version after waiting "
                    f"{source.wait_seconds:g} s (HTTP {error.code}); the InfluxDB VM adds the InfluxDB token "
                    f"once InfluxDB is set up, the stack adds the Kafka passwords") from None
        except (OSError, KeyError, ValueError) as error:
            raise TokenError(f"cannot read secret {name}: {type(error).__name__}") from None
        _sleep(source.retry_seconds)


_sleep = time.sleep


def _read_file(source: TokenSource) -> str:
    try:
        with open(source.file or "", encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as error:
        raise TokenError(f"cannot read {source.what} file {source.file}: {error.strerror}") from None


def read_token(source: TokenSource) -> str:
    """The secret, surrounding whitespace stripped; read once per process and source."""
    if source not in _cache:
        token = _read_secret(source) if source.secret else _read_file(source)
        if not token:
            raise TokenError(f"the {source.what} is empty")
        _cache[source] = token
    return _cache[source]
