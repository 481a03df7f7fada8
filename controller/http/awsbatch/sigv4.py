"""AWS Signature Version 4 verification (pure: no I/O, the clock is an argument).

Written from AWS's published signing process, so the controller needs no AWS library at run
time. A request is accepted when the client proves it knows the secret of the access key it
names, for this region and service, for this exact method, path, query, signed headers and
body, at a time within `MAX_SKEW_SECONDS` of the server's clock:

1. canonical request = METHOD \\n canonical URI \\n canonical query \\n canonical headers \\n
   signed header names \\n hex(SHA-256(body))
2. string to sign = "AWS4-HMAC-SHA256" \\n x-amz-date \\n scope \\n hex(SHA-256(canonical request)),
   scope = DATE/REGION/SERVICE/aws4_request
3. signing key = HMAC chain "AWS4"+secret -> DATE -> REGION -> SERVICE -> "aws4_request";
   signature = hex(HMAC(signing key, string to sign)), compared in constant time.

Each refusal is a `SignatureError` whose `code` is the error type AWS itself answers with, so
botocore raises a `ClientError` with the code users search for.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 300
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

INVALID_SIGNATURE = "InvalidSignatureException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
MISSING_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)"
    r"\s*,\s*Signature=(?P<signature>[0-9a-fA-F]+)\s*$"
)
_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")


class SignatureError(Exception):
    """The request is not authenticated; `code` is AWS's error type for the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers, as received (path and query still percent-encoded)."""

    method: str
    raw_path: str
    raw_query: str
    headers: Iterable[tuple[str, str]]
    """Every header as received, names in any case, repeated names repeated."""
    body: bytes


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _remove_dot_segments(path: str) -> str:
    out: list[str] = []
    for segment in path.split("/"):
        if segment == ".":
            continue
        if segment == "..":
            if len(out) > 1:
                out.pop()
            continue
        out.append(segment)
    joined = "/".join(out)
    if path.endswith(("/.", "/..")):
        joined += "/"
    return joined if joined.startswith("/") else "/" + joined


def canonical_uri(raw_path: str) -> str:
    """The path as sent, dot segments removed, encoded once more (non-S3 services double-encode)."""
    return quote(_remove_dot_segments(raw_path or "/"), safe="/~")


def canonical_query(raw_query: str) -> str:
    """Names and values decoded, re-encoded with AWS's unreserved set, sorted by name then value."""
    if not raw_query:
        return ""
    pairs = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def canonical_headers(headers: Iterable[tuple[str, str]], signed: list[str]) -> str:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(" ".join(value.split()))
    lines = []
    for name in signed:
        if name not in values:
            raise SignatureError(INCOMPLETE_SIGNATURE, f"signed header '{name}' is not in the request")
        lines.append(f"{name}:{','.join(values[name])}")
    return "\n".join(lines) + "\n"


def canonical_request(req: SignedRequest, signed: list[str], payload_hash: str) -> str:
    return "\n".join(
        [
            req.method.upper(),
            canonical_uri(req.raw_path),
            canonical_query(req.raw_query),
            canonical_headers(req.headers, signed),
            ";".join(signed),
            payload_hash,
        ]
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


@dataclass(frozen=True)
class Verified:
    access_key_id: str


def _header(headers: Iterable[tuple[str, str]], name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value
    return ""


def verify(
    req: SignedRequest,
    secret_of: Callable[[str], str | None],
    *,
    region: str,
    service: str,
    now: datetime,
) -> Verified:
    """Check `req`'s Authorization header; return the access key it was signed with.

    `secret_of(access_key_id)` gives the key's secret, or None for an unknown key.
    """
    headers = list(req.headers)
    authorization = _header(headers, "authorization")
    if not authorization:
        raise SignatureError(MISSING_TOKEN, "Missing Authentication Token")
    match = _AUTH.match(authorization.strip())
    if match is None:
        raise SignatureError(
            INCOMPLETE_SIGNATURE,
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            f"with algorithm {ALGORITHM}",
        )
    parts = match["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SignatureError(
            INCOMPLETE_SIGNATURE, "Credential must be ACCESS_KEY/DATE/REGION/SERVICE/aws4_request"
        )
    access_key, date, cred_region, cred_service, _ = parts
    secret = secret_of(access_key)
    if secret is None:
        raise SignatureError(UNRECOGNIZED_CLIENT, "The security token included in the request is invalid.")
    if _header(headers, "x-amz-security-token"):
        raise SignatureError(UNRECOGNIZED_CLIENT, "The security token included in the request is invalid.")
    if cred_region != region:
        raise SignatureError(
            INVALID_SIGNATURE, f"Credential should be scoped to a valid region, not '{cred_region}' (this is {region})"
        )
    if cred_service != service:
        raise SignatureError(
            INVALID_SIGNATURE, f"Credential should be scoped to correct service: '{service}', not '{cred_service}'"
        )
    amz_date = _header(headers, "x-amz-date").strip()
    if not _AMZ_DATE.fullmatch(amz_date):
        raise SignatureError(INCOMPLETE_SIGNATURE, "x-amz-date header must be given as YYYYMMDDTHHMMSSZ")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureError(INCOMPLETE_SIGNATURE, f"x-amz-date '{amz_date}' is not a valid time") from None
    if date != amz_date[:8]:
        raise SignatureError(
            INVALID_SIGNATURE, f"Credential date '{date}' does not match the date of x-amz-date '{amz_date}'"
        )
    skew = (signed_at - now).total_seconds()
    if abs(skew) > MAX_SKEW_SECONDS:
        when = "earlier" if skew < 0 else "later"
        raise SignatureError(
            INVALID_SIGNATURE,
            f"Signature expired: {amz_date} is now {when} than the server time "
            f"{now.strftime('%Y%m%dT%H%M%SZ')} by more than {MAX_SKEW_SECONDS // 60} minutes",
        )
    signed = match["signed"].split(";")
    if signed != sorted(set(signed)) or any(s != s.lower() for s in signed):
        raise SignatureError(INVALID_SIGNATURE, "SignedHeaders must be lower-case, sorted and without repeats")
    if "host" not in signed:
        raise SignatureError(INVALID_SIGNATURE, "SignedHeaders must include 'host'")
    body_hash = hashlib.sha256(req.body).hexdigest()
    claimed = _header(headers, "x-amz-content-sha256").strip()
    if claimed and claimed.lower() != body_hash:
        # UNSIGNED-PAYLOAD included: only S3 may leave the body unsigned.
        raise SignatureError(INVALID_SIGNATURE, "x-amz-content-sha256 does not match the request body")
    canonical = canonical_request(req, signed, claimed or body_hash)
    scope = f"{date}/{region}/{service}/aws4_request"
    expected = hmac.new(
        signing_key(secret, date, region, service), string_to_sign(amz_date, scope, canonical).encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, match["signature"].lower()):
        raise SignatureError(
            INVALID_SIGNATURE,
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return Verified(access_key_id=access_key)


def header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(name, value) pairs from a multidict (aiohttp's CIMultiDictProxy) or a plain mapping."""
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(k), str(v)) for k, v in items]
