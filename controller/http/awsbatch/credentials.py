"""The access keys of the AWS Batch edge (`controller --aws-credentials-file`).

YAML, a list of ``{name, access_key_id, secret_access_key, role}``, validated in the style of
the gRPC tokens file (controller/api/auth.py): one line naming the entry and the key for each
problem, before the controller starts. Roles are the gRPC side's (reader, submitter, admin),
and `name` is what job owner tags and logs show, never the key. SigV4 needs the secret itself
(the signature is an HMAC keyed by it), so unlike bearer tokens no digest can be kept instead:
protect the file like a private key.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from controller.api import auth
from shoal import errors

_KEY_ID = re.compile(r"[A-Za-z0-9]{16,128}")
MIN_SECRET_CHARS = 16
_FIELDS = ("name", "access_key_id", "secret_access_key", "role")


class CredentialsFileError(errors.InvalidArgument):
    pass


class AccessKeyTable:
    """access key id -> (secret, Principal)."""

    def __init__(self, entries: dict[str, tuple[str, auth.Principal]]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def secret(self, access_key_id: str) -> str | None:
        entry = self._entries.get(access_key_id)
        return entry[0] if entry else None

    def principal(self, access_key_id: str) -> auth.Principal:
        return self._entries[access_key_id][1]

    @classmethod
    def parse(cls, text: str, source: str = "credentials file") -> AccessKeyTable:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise CredentialsFileError(f"{source}: not valid YAML: {err}") from None
        if not isinstance(doc, list) or not doc:
            raise CredentialsFileError(
                f"{source}: expected a non-empty list of {{name, access_key_id, secret_access_key, role}}"
            )
        entries: dict[str, tuple[str, auth.Principal]] = {}
        names: set[str] = set()
        for i, item in enumerate(doc):
            where = f"{source}: [{i}]"
            if not isinstance(item, dict):
                raise CredentialsFileError(f"{where}: expected a mapping with {', '.join(_FIELDS)}")
            unknown = sorted(set(map(str, item)) - set(_FIELDS))
            if unknown:
                raise CredentialsFileError(f"{where}: unknown key '{unknown[0]}' (expected {', '.join(_FIELDS)})")
            name, key_id, secret, role = (item.get(f) for f in _FIELDS)
            if not isinstance(name, str) or not auth._TOKEN_NAME.fullmatch(name):
                raise CredentialsFileError(f"{where}.name: 1..64 letters, digits, '.', '_', '@', '-' (got {name!r})")
            if name in names:
                raise CredentialsFileError(f"{where}.name: '{name}' is listed twice")
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise CredentialsFileError(f"{where}.access_key_id: 16..128 letters and digits (got {key_id!r})")
            if key_id in entries:
                raise CredentialsFileError(f"{where}.access_key_id: also given to '{entries[key_id][1].name}'")
            if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS or secret != secret.strip():
                raise CredentialsFileError(
                    f"{where}.secret_access_key: must be a string of at least {MIN_SECRET_CHARS} characters "
                    "without surrounding spaces (e.g. from `openssl rand -base64 30`)"
                )
            if role not in auth.ROLES:
                raise CredentialsFileError(f"{where}.role: must be one of {', '.join(auth.ROLES)} (got {role!r})")
            names.add(name)
            entries[key_id] = (secret, auth.Principal(name=name, role=role))
        return cls(entries)

    @classmethod
    def load(cls, path: str | Path) -> AccessKeyTable:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise CredentialsFileError(f"--aws-credentials-file: cannot read {path}: {err.strerror}") from None
        return cls.parse(text, str(path))
