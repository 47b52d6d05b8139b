"""The landing zone on S3: which objects are ready, fetching one, archive and quarantine.

``LANDING_URI=s3://bucket/prefix`` puts the drops of source ``S`` under ``s3://bucket/prefix/S/``;
archived objects go to ``ARCHIVE_URI`` and quarantined ones to ``QUARANTINE_URI`` (each again
with ``/S/``), which default to the siblings of the landing prefix: ``LANDING_URI=s3://b/landing``
archives to ``s3://b/archive`` and quarantines to ``s3://b/quarantine``. The three prefixes must
not contain one another (an archived object would otherwise be listed as a new drop).

The rules mirror the local landing folder (:mod:`assets_project.lib.landing`):

- **Safe keys.** Only keys directly under ``<prefix>/<source>/`` are read. A key whose
  normalised form leaves that prefix (``..`` or ``.`` segments, empty segments, a backslash) is
  refused with :class:`~assets_project.lib.landing.UnsafePathError`: it is reported, never read,
  moved or deleted. Keys in deeper "folders" are passed over, as subfolders are locally.
- **Ready.** S3 objects are atomic: a PUT (or a completed multipart upload) makes the whole
  object visible at once, so an object is never read half-written. What *settle* means here is
  that a key which was written less than ``settle_seconds`` ago (its ``LastModified``) is left
  alone, so a producer that rewrites a key in quick succession (an upload, then a corrected
  one) is read once, in its last version. A ``<key>.done`` marker not older than the object
  makes it ready at once; temporary names (``.part``, ``_COPYING_``, ...) and names starting
  with ``.`` or ``_`` are never read; an empty object waits ``empty_grace_seconds`` for a
  rewrite with content, as an empty local file does.
- **Identity.** An object is identified by key, size and ETag: a rewritten key is a new drop.
  The ingestion fetches it with ``If-Match: <etag>`` into a local spool file (streamed in
  chunks, bounded memory) and checks again, right before the Delta commit, that the key still
  has that ETag; otherwise :class:`~assets_project.lib.ingest.FileChangedError` and nothing is
  committed, exactly as for a local file that changed while it was read.
- **Archive and quarantine** are a copy (``CopySourceIfMatch``: only the version that was
  ingested) and a conditional delete (``If-Match``), never overwriting an existing key (a free
  name ``a.1.csv``, ``a.2.csv`` ... is taken, as locally); quarantine writes a ``.reason``
  object beside the copy first. The ``.done`` marker moves with its object. If the key was
  rewritten after it was read, the copy or the delete fails its condition and the new version
  stays in landing, where it is a new drop (with its own ETag) and is read as such: nothing is
  lost, and the lake never holds half of an object.

Everything here takes a boto3 S3 client (``dagster_aws.s3.S3Resource.get_client()`` in the
project); object listings are the dicts of ``list_objects_v2`` (``Key``, ``Size``, ``ETag``,
``LastModified``), as ``dagster_aws.s3.sensor.get_objects`` returns them.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from assets_project.lib.ingest import FileChangedError
from assets_project.lib.landing import (
    DEFAULT_EMPTY_GRACE_SECONDS,
    MARKER_SUFFIX,
    UnsafePathError,
    is_candidate_name,
)

_CHUNK = 8 << 20
_PRECONDITION_FAILED = {"PreconditionFailed", "412"}
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class ObjectChangedError(FileChangedError):
    """The object's key no longer holds the version (ETag) that was read (the S3 form of a
    file that changed while it was read: nothing is committed for it)."""


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError`` (empty for any other exception)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class S3Prefix:
    """A bucket and a key prefix without leading or trailing slashes (``s3://bucket/prefix``)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Prefix:
        """Parse ``s3://bucket[/prefix]``; raise ValueError for anything else."""
        if not uri.startswith(("s3://", "s3a://")):
            raise ValueError(f"not an S3 URI: {uri!r} (expected s3://bucket/prefix)")
        bucket, _, prefix = uri.split("://", 1)[1].partition("/")
        prefix = prefix.strip("/")
        if not bucket or (prefix and posixpath.normpath(prefix) != prefix):
            raise ValueError(f"not a plain S3 prefix: {uri!r}")
        return cls(bucket=bucket, prefix=prefix)

    def key(self, *parts: str) -> str:
        """The key of ``parts`` under this prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def sibling(self, name: str) -> S3Prefix:
        """The prefix ``name`` beside this one (``s3://b/landing`` -> ``s3://b/<name>``)."""
        parent = posixpath.dirname(self.prefix)
        return S3Prefix(self.bucket, posixpath.join(parent, name) if parent else name)

    def contains(self, other: S3Prefix) -> bool:
        """Whether every key under ``other`` is also under this prefix."""
        if self.bucket != other.bucket:
            return False
        return (
            not self.prefix
            or other.prefix == self.prefix
            or (other.prefix.startswith(self.prefix + "/"))
        )

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True)
class S3Landing:
    """Where drops land on S3, and where they go afterwards (see the module docstring)."""

    landing: S3Prefix
    archive: S3Prefix
    quarantine: S3Prefix

    def __post_init__(self) -> None:
        pairs = (
            ("landing", self.landing, "archive", self.archive),
            ("landing", self.landing, "quarantine", self.quarantine),
            ("archive", self.archive, "quarantine", self.quarantine),
        )
        for name_a, a, name_b, b in pairs:
            if a.contains(b) or b.contains(a):
                raise ValueError(f"the {name_a} prefix {a} and the {name_b} prefix {b} overlap")

    @classmethod
    def from_uris(
        cls, landing: str, archive: str | None = None, quarantine: str | None = None
    ) -> S3Landing:
        """From ``LANDING_URI``-style URIs; archive and quarantine default to its siblings."""
        base = S3Prefix.parse(landing)
        if not base.prefix and (archive is None or quarantine is None):
            raise ValueError(
                f"LANDING_URI={landing} is a whole bucket: give it a prefix "
                "(s3://bucket/landing) or set ARCHIVE_URI and QUARANTINE_URI in other buckets"
            )
        return cls(
            landing=base,
            archive=S3Prefix.parse(archive) if archive else base.sibling("archive"),
            quarantine=S3Prefix.parse(quarantine) if quarantine else base.sibling("quarantine"),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> S3Landing | None:
        """From ``LANDING_URI``, ``ARCHIVE_URI`` and ``QUARANTINE_URI``; None when the landing
        is not on S3 (unset: the local ``DATA_DIR/landing`` folder)."""
        uri = environ.get("LANDING_URI")
        if not uri:
            return None
        return cls.from_uris(uri, environ.get("ARCHIVE_URI"), environ.get("QUARANTINE_URI"))

    def source_prefix(self, source: str) -> str:
        """The key prefix (with a trailing slash) that ``source``'s drops are listed under."""
        return self.landing.key(source) + "/"

    def key_of(self, source: str, relative: str) -> str:
        """The landing key of ``relative`` (``<source>/<name>``, as a run's config names it);
        UnsafePathError unless it is an object directly under the source's prefix."""
        key = self.landing.key(relative)
        safe_name(self.source_prefix(source), key)
        return key


def safe_name(prefix: str, key: str) -> str:
    """The name of ``key`` under ``prefix`` (which ends in ``/``); UnsafePathError when the
    key, normalised, is not directly under the prefix, or is not already normal."""
    if "\\" in key or key.startswith("/"):
        raise UnsafePathError(f"key {key!r} is not a plain relative key")
    normal = posixpath.normpath(key)
    if normal != key.rstrip("/") or key.endswith("/"):
        raise UnsafePathError(f"key {key!r} normalises to {normal!r}; not read")
    if not normal.startswith(prefix):
        raise UnsafePathError(f"key {key!r} is outside {prefix!r}")
    name = normal[len(prefix) :]
    if not name or "/" in name:
        raise UnsafePathError(f"key {key!r} is not directly under {prefix!r}")
    return name


@dataclass(frozen=True)
class S3Drop:
    """An object in a landing prefix, with the identity used to ingest it once."""

    bucket: str
    key: str
    relative: str
    """``<source>/<name>``: the name recorded in ``_source`` and in the run config."""
    size: int
    etag: str
    last_modified: float
    marker: str | None = None
    """The key of the ``.done`` marker that made it ready, if any."""

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def run_key(self) -> str:
        """The object's identity: a rewritten key (new ETag) is a new drop."""
        return f"{self.relative}:{self.size}:{self.etag.strip(chr(34))}"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _timestamp(value: datetime | float) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def scan_objects(
    bucket: str,
    source_prefix: str,
    objects: Iterable[Mapping[str, Any]],
    settle_seconds: float,
    now: float,
    *,
    empty_grace_seconds: float = DEFAULT_EMPTY_GRACE_SECONDS,
) -> tuple[list[S3Drop], list[str]]:
    """Ready objects among a listing of ``source_prefix`` (sorted by key), and a note for each
    object passed over (unsafe key, still settling, empty and waiting), as :func:`scan` does
    for a folder. Temporary names, markers and hidden names are passed over without a note."""
    source = posixpath.basename(source_prefix.rstrip("/"))
    listed = {str(o["Key"]): o for o in objects}
    ready: list[S3Drop] = []
    notes: list[str] = []
    for key in sorted(listed):
        if not key.startswith(source_prefix):
            notes.append(f"not read: key {key!r} is outside {source_prefix!r}")
            continue
        rest = key[len(source_prefix) :]
        if any(segment in (".", "..") for segment in rest.split("/")) or "\\" in rest:
            notes.append(f"not read: key {key!r} is not a plain key under {source_prefix!r}")
            continue
        if "/" in rest.rstrip("/") or not rest or rest.endswith("/"):
            continue  # a deeper "folder" or a folder placeholder: not a drop of this source
        try:
            name = safe_name(source_prefix, key)
        except UnsafePathError as exc:
            notes.append(f"not read: {exc}")
            continue
        if not is_candidate_name(name):
            continue
        obj = listed[key]
        modified = _timestamp(obj["LastModified"])
        marker_obj = listed.get(key + MARKER_SUFFIX)
        marker = (
            key + MARKER_SUFFIX
            if marker_obj is not None and _timestamp(marker_obj["LastModified"]) >= modified
            else None
        )
        age = now - modified
        size = int(obj["Size"])
        if marker is None and age < settle_seconds:
            notes.append(f"{name}: written {age:.1f}s ago, still settling")
            continue
        if marker is None and size == 0 and age < empty_grace_seconds:
            notes.append(
                f"{name}: empty for {age:.0f}s, waiting up to {empty_grace_seconds:.0f}s "
                f"for content (or a {MARKER_SUFFIX} marker)"
            )
            continue
        ready.append(
            S3Drop(
                bucket=bucket,
                key=key,
                relative=f"{source}/{name}",
                size=size,
                etag=str(obj["ETag"]),
                last_modified=modified,
                marker=marker,
            )
        )
    return ready, notes


def head(client: Any, bucket: str, key: str) -> Mapping[str, Any] | None:
    """The object's ``HeadObject`` answer, or None when the key does not exist."""
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if error_code(exc) in _NOT_FOUND:
            return None
        raise


def drop_of(client: Any, bucket: str, key: str, relative: str) -> S3Drop | None:
    """The drop at ``key`` as it is now (None: no such object); its marker if one is there."""
    found = head(client, bucket, key)
    if found is None:
        return None
    modified = _timestamp(found["LastModified"])
    marker = head(client, bucket, key + MARKER_SUFFIX)
    return S3Drop(
        bucket=bucket,
        key=key,
        relative=relative,
        size=int(found["ContentLength"]),
        etag=str(found["ETag"]),
        last_modified=modified,
        marker=key + MARKER_SUFFIX
        if marker is not None and _timestamp(marker["LastModified"]) >= modified
        else None,
    )


def still_there(client: Any, drop: S3Drop) -> bool:
    """Whether the drop's key still holds the version that was listed (same ETag)."""
    found = head(client, drop.bucket, drop.key)
    return found is not None and found["ETag"] == drop.etag


def check_unchanged(client: Any, drop: S3Drop) -> None:
    """Raise :class:`ObjectChangedError` unless the key still holds the drop's version."""
    found = head(client, drop.bucket, drop.key)
    if found is None:
        raise ObjectChangedError(f"{drop.uri} disappeared while it was read")
    if found["ETag"] != drop.etag:
        raise ObjectChangedError(
            f"{drop.uri} was replaced while it was read (ETag {drop.etag} -> {found['ETag']})"
        )


def fetch(client: Any, drop: S3Drop, spool_dir: Path) -> Path:
    """Stream the drop's version (``If-Match`` its ETag) into a new file under ``spool_dir``,
    keeping the object's name (its suffix tells the reader the format); the caller deletes it.
    Raises :class:`ObjectChangedError` when the key no longer holds that version."""
    folder = spool_dir / f"s3-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    target = folder / drop.name
    try:
        response = client.get_object(Bucket=drop.bucket, Key=drop.key, IfMatch=drop.etag)
    except Exception as exc:
        folder.rmdir()
        if error_code(exc) in _PRECONDITION_FAILED | _NOT_FOUND:
            raise ObjectChangedError(f"{drop.uri} changed before it was read") from exc
        raise
    body = response["Body"]
    try:
        with target.open("wb") as handle:
            for chunk in body.iter_chunks(_CHUNK):
                handle.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        folder.rmdir()
        raise
    finally:
        body.close()
    return target


def discard_spool(path: Path) -> None:
    """Delete a file made by :func:`fetch`, and its folder."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def _free_key(client: Any, target: S3Prefix, source: str, name: str) -> str:
    key = target.key(source, name)
    counter = 1
    while head(client, target.bucket, key) is not None:
        stem, dot, suffix = name.partition(".")
        key = target.key(source, f"{stem}.{counter}{dot}{suffix}")
        counter += 1
    return key


def _move(client: Any, bucket: str, key: str, etag: str, target_bucket: str, target: str) -> None:
    """Copy the ``etag`` version of ``key`` to ``target``, then delete ``key`` if it still has
    that version. ObjectChangedError when it was replaced (the copy, if made, stays)."""
    try:
        client.copy(
            {"Bucket": bucket, "Key": key},
            target_bucket,
            target,
            ExtraArgs={"CopySourceIfMatch": etag},
        )
        client.delete_object(Bucket=bucket, Key=key, IfMatch=etag)
    except Exception as exc:
        if error_code(exc) in _PRECONDITION_FAILED | _NOT_FOUND:
            raise ObjectChangedError(f"s3://{bucket}/{key} was replaced or removed") from exc
        raise


def _move_with_marker(client: Any, drop: S3Drop, target: S3Prefix, key: str) -> str:
    _move(client, drop.bucket, drop.key, drop.etag, target.bucket, key)
    if drop.marker is not None:
        marker = head(client, drop.bucket, drop.marker)
        if marker is not None:
            # A marker replaced meanwhile belongs to a new version: it stays with it.
            with contextlib.suppress(ObjectChangedError):
                _move(
                    client,
                    drop.bucket,
                    drop.marker,
                    str(marker["ETag"]),
                    target.bucket,
                    key + MARKER_SUFFIX,
                )
    return f"s3://{target.bucket}/{key}"


def archive(client: Any, drop: S3Drop, store: S3Landing) -> str:
    """Move an ingested object (and its marker) to the archive; never overwrites. Returns the
    archive URI. ObjectChangedError: the key was rewritten meanwhile and stays in landing."""
    source = drop.relative.split("/", 1)[0]
    key = _free_key(client, store.archive, source, drop.name)
    return _move_with_marker(client, drop, store.archive, key)


def quarantine(client: Any, drop: S3Drop, store: S3Landing, reason: str) -> str:
    """Move an object (and its marker) to the quarantine with a ``.reason`` object beside it.
    Returns its quarantine URI. ObjectChangedError: the key was rewritten meanwhile; the new
    version stays in landing (a ``.reason`` object is left behind for the old one)."""
    source = drop.relative.split("/", 1)[0]
    key = _free_key(client, store.quarantine, source, drop.name)
    client.put_object(
        Bucket=store.quarantine.bucket,
        Key=key + ".reason",
        Body=(reason + "\n").encode("utf-8"),
        ContentType="text/plain; charset=utf-8",
    )
    return _move_with_marker(client, drop, store.quarantine, key)
