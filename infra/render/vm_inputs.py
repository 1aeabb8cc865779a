"""What a service VM's cloud-config is given, validated: its data disk, secret names, config, backups.

Plain frozen values, no Pulumi: callers resolve Outputs with `.apply` and pass these to
infra/render/cloud_init.py. A SecretRef holds a Secret Manager resource name, never a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from infra import catalog

_SECRET_ID = re.compile(r"projects/[A-Za-z0-9._:-]+/secrets/[A-Za-z0-9_-]{1,255}")
_DEVICE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_GCS_URI = re.compile(r"gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/(\S+)")
_RELATIVE_PATH = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_ACCOUNT_EMAIL = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com")


@dataclass(frozen=True)
class DataDisk:
    """The persistent disk that holds the services' volumes, as attached to the VM."""

    device_name: str = "data"  # the attached disk's device_name
    mount_path: str = "/mnt/disks/data"  # COS mounts disks under /mnt/disks (writable, executable)

    def __post_init__(self) -> None:
        if not _DEVICE_NAME.fullmatch(self.device_name):
            raise ValueError(f"data disk device_name {self.device_name!r}: use lowercase letters, digits, -")
        if not re.fullmatch(r"/mnt/disks/[a-z0-9][a-z0-9_-]*", self.mount_path):
            raise ValueError(f"data disk mount_path {self.mount_path!r}: must be a folder of /mnt/disks")

    @property
    def device(self) -> str:
        """The stable by-id path GCE gives the disk attached with `device_name`."""
        return f"/dev/disk/by-id/google-{self.device_name}"

    def volume_path(self, volume: catalog.Volume | str) -> str:
        """The host folder that holds one volume."""
        name = volume.name if isinstance(volume, catalog.Volume) else volume
        return f"{self.mount_path}/{name}"


DEFAULT_DATA_DISK = DataDisk()


@dataclass(frozen=True)
class SecretRef:
    """Where one catalog secret lives: its Secret Manager resource name, never its value."""

    secret: str  # logical name, one of catalog.SECRETS
    secret_id: str  # projects/P/secrets/S

    def __post_init__(self) -> None:
        if self.secret not in catalog.SECRETS:
            raise ValueError(f"unknown secret {self.secret!r}; known: {', '.join(catalog.SECRETS)}")
        if not _SECRET_ID.fullmatch(self.secret_id):
            # The rejected string is not echoed: it may be a secret value passed by mistake.
            raise ValueError(f"secret {self.secret!r}: secret_id must be a name like projects/P/secrets/S")


@dataclass(frozen=True)
class ConfigBundle:
    """A .tar.gz in Cloud Storage whose top-level folders are config volumes, unpacked at boot."""

    gcs_uri: str  # gs://bucket/object; name the object by its content digest so a VM gets one version
    volumes: tuple[str, ...]  # the catalog volumes it fills

    def __post_init__(self) -> None:
        if not _GCS_URI.fullmatch(self.gcs_uri):
            raise ValueError(f"config bundle {self.gcs_uri!r}: must be gs://BUCKET/OBJECT")
        if not self.volumes:
            raise ValueError(f"config bundle {self.gcs_uri!r}: name the volumes it fills")

    @property
    def media_url(self) -> str:
        """The Cloud Storage JSON API URL that downloads the object."""
        return _media_url(self.gcs_uri)


def _media_url(gcs_uri: str) -> str:
    match = _GCS_URI.fullmatch(gcs_uri)
    assert match is not None
    bucket, name = match.groups()
    return f"https://storage.googleapis.com/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"


@dataclass(frozen=True)
class AgentJar:
    """A Java agent's jar in Cloud Storage (uploaded from the lock), checked by its sha256 on the VM."""

    gcs_uri: str  # gs://bucket/object
    sha256: str   # the lock's

    def __post_init__(self) -> None:
        if not _GCS_URI.fullmatch(self.gcs_uri):
            raise ValueError(f"agent jar {self.gcs_uri!r}: must be gs://BUCKET/OBJECT")
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"agent jar {self.gcs_uri}: sha256 {self.sha256!r} is not 64 hex digits")

    @property
    def media_url(self) -> str:
        """The Cloud Storage JSON API URL that downloads the jar."""
        return _media_url(self.gcs_uri)


@dataclass(frozen=True)
class InfluxBackup:
    """Where the InfluxDB VM uploads its daily backup, and the account it uploads as."""

    bucket: str  # a bucket name, not gs://
    account_email: str  # the backup service account (object create only on `bucket`)

    def __post_init__(self) -> None:
        if not _BUCKET_NAME.fullmatch(self.bucket):
            raise ValueError(f"backup bucket {self.bucket!r}: must be a bucket name (no gs://)")
        if not _ACCOUNT_EMAIL.fullmatch(self.account_email):
            raise ValueError(f"backup account {self.account_email!r}: must be a service account email")


@dataclass(frozen=True)
class ConfigFile:
    """A small config file carried inline, written into a config volume at `path` (relative)."""

    volume: str
    path: str
    content: str

    def __post_init__(self) -> None:
        if not _RELATIVE_PATH.fullmatch(self.path) or ".." in self.path.split("/"):
            raise ValueError(f"config file {self.path!r}: must be a relative path of [A-Za-z0-9._-] parts")
