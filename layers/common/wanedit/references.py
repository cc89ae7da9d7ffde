"""A sidecar's reference images: what each entry is (a bucket key, an https URL, a data: URI), or why
it cannot be used."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

from wanedit.domain.limits import IMAGE_MIME_TYPES, MAX_REFERENCE_IMAGES

REFERENCE_LIMIT = (
    f"at most {MAX_REFERENCE_IMAGES}; each a key in this bucket, an https:// URL or a data:image/... URI"
)


@dataclass(frozen=True)
class BucketKeyRef:
    """A key in the sidecar's bucket, as written (resolve it with `wanedit.validation.resolve_key`)."""

    key: str


@dataclass(frozen=True)
class HttpsUrlRef:
    """A public https URL: handed to the API as is, never fetched by us (no SSRF from our functions)."""

    url: str


@dataclass(frozen=True)
class DataUriRef:
    """An inline ``data:<mime>;base64,<payload>`` image; the payload is checked in `wanedit.validation`."""

    mime: str
    payload: str


Reference = BucketKeyRef | HttpsUrlRef | DataUriRef

_DATA_URI = re.compile(r"data:([^;,]*);base64,")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)


def _reference_error(fix: str) -> PydanticCustomError:
    return PydanticCustomError("reference", "{fix}", {"fix": fix, "limit": REFERENCE_LIMIT})


def classify_reference(ref: str) -> Reference:
    """What a ``reference_images`` entry is; raises `PydanticCustomError` (with a fix) if unusable.

    - ``data:image/...;base64,...`` → `DataUriRef` (MIME one of the API's four, written in lower case).
    - ``https://host/...`` → `HttpsUrlRef`: a host, no user:password, not localhost or a private,
      loopback, link-local or otherwise non-public IP literal (the API cannot reach those anyway).
    - no scheme → `BucketKeyRef`: a key in the same bucket. A key starting with the incoming prefix
      (``incoming/refs/jacket.png``) is used as is; any other (``jacket.png``, ``refs/jacket.png``,
      ``./jacket.png``) is relative to the sidecar's folder. Either way it stays under ``incoming/``.
    - ``http://`` (the API takes it, but it can be read and altered in transit) and every other
      ``scheme://`` (``s3://``, ``ftp://``, ``file://``) are refused.
    """
    if ref != ref.strip() or not ref:
        raise _reference_error("remove the spaces around the reference" if ref else "remove the empty entry")
    if ref[:5].lower() == "data:":
        return _classify_data_uri(ref)
    scheme, sep, _ = ref.partition("://")
    if not sep:
        return BucketKeyRef(ref)
    name = scheme.lower()
    if name == "https":
        return _classify_https(ref)
    if name == "http":
        raise _reference_error("use an https:// URL: plain http:// can be read and altered in transit")
    if name == "s3":
        raise _reference_error("write the key without s3://bucket/ (images must be in this bucket)")
    raise _reference_error(
        f"{scheme}:// references are not supported; use a key in this bucket, an https:// URL or a data: URI"
    )


def _classify_data_uri(ref: str) -> DataUriRef:
    match = _DATA_URI.match(ref)
    if match is None:
        raise _reference_error("write inline images exactly as data:image/png;base64,<base64 of the file>")
    mime = match.group(1)
    if mime not in IMAGE_MIME_TYPES:
        lowered = mime.strip().lower()
        hint = "image/jpeg" if lowered in ("image/jpg", "image/pjpeg") else None
        hint = hint or (lowered if lowered in IMAGE_MIME_TYPES else None)
        fix = f'write the MIME type as "{hint}"' if hint else f"use one of {', '.join(IMAGE_MIME_TYPES)}"
        raise _reference_error(f'data: URI MIME type "{mime}" is not accepted by the API; {fix}')
    payload = ref[match.end() :]
    if not payload:
        raise _reference_error("the data: URI has no data after the comma")
    return DataUriRef(mime=mime, payload=payload)


def _classify_https(ref: str) -> HttpsUrlRef:
    try:
        parts = urlsplit(ref)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise _reference_error(f"the URL is malformed ({exc}); check the host and port") from None
    if not host:
        raise _reference_error("the URL has no host; write https://host/path/image.png")
    if parts.username is not None or parts.password is not None:
        raise _reference_error("remove the user:password@ part; use a presigned or public URL instead")
    if host == "localhost" or host.endswith(".localhost"):
        raise _reference_error("localhost is not reachable by the API; use a public https:// URL")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if _NUMERIC_HOST.match(host):
            raise _reference_error("write the host as a name or a dotted IPv4 address") from None
        return HttpsUrlRef(ref)
    if not address.is_global or address.is_multicast:
        raise _reference_error(
            f"{host} is a private, loopback or reserved address; use a public https:// URL"
        )
    return HttpsUrlRef(ref)
