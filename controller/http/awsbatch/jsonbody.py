"""Reading an AWS JSON request body field by field, naming the field in every error.

`Obj` remembers which keys were read; `done()` refuses every key that was not (with the
reason from unsupported.py), so a field shoal does not translate is never silently dropped.
botocore validates types before sending, but other clients may not: each getter checks.
"""

from __future__ import annotations

import math
import re
from typing import Any

from controller.http.awsbatch import unsupported
from shoal import errors

_INDEX = re.compile(r"\[\d+\]")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


class Obj:
    def __init__(self, data: Any, path: str, operation: str) -> None:
        if not isinstance(data, dict):
            raise errors.InvalidArgument(f"{path or 'request body'}: expected a JSON object, got {_kind(data)}")
        self.data = data
        self.path = path
        self.operation = operation
        self._read: set[str] = set()

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        self._read.add(key)
        return self.data.get(key)

    def _get(self, key: str, required: bool) -> Any:
        value = self.raw(key)
        if value is None and required:
            raise errors.InvalidArgument(f"{self._at(key)}: is required")
        return value

    def str(self, key: str, *, required: bool = False, default: str = "") -> str:
        value = self._get(key, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise errors.InvalidArgument(f"{self._at(key)}: expected a string, got {_kind(value)}")
        return value

    def int(self, key: str, *, required: bool = False, minimum: int | None = None) -> int | None:
        value = self._get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
            raise errors.InvalidArgument(f"{self._at(key)}: expected a whole number, got {_kind(value)} {value!r}")
        if minimum is not None and value < minimum:
            raise errors.InvalidArgument(f"{self._at(key)}: must be >= {minimum} (got {int(value)})")
        return int(value)

    def number(self, key: str) -> float | None:
        value = self._get(key, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise errors.InvalidArgument(f"{self._at(key)}: expected a number, got {_kind(value)} {value!r}")
        return float(value)

    def bool(self, key: str) -> bool | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, bool):
            raise errors.InvalidArgument(f"{self._at(key)}: expected true or false, got {_kind(value)}")
        return value

    def list(self, key: str, *, required: bool = False) -> list[Any]:
        value = self._get(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise errors.InvalidArgument(f"{self._at(key)}: expected a list, got {_kind(value)}")
        return value

    def str_list(self, key: str, *, required: bool = False) -> list[str]:
        items = self.list(key, required=required)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise errors.InvalidArgument(f"{self._at(key)}[{i}]: expected a string, got {_kind(item)}")
        return items

    def objs(self, key: str, *, required: bool = False) -> list[Obj]:
        return [Obj(item, f"{self._at(key)}[{i}]", self.operation) for i, item in enumerate(self.list(key, required=required))]

    def obj(self, key: str) -> Obj | None:
        value = self.raw(key)
        return None if value is None else Obj(value, self._at(key), self.operation)

    def str_map(self, key: str) -> dict[str, str]:
        value = self.raw(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise errors.InvalidArgument(f"{self._at(key)}: expected an object of strings, got {_kind(value)}")
        for k, v in value.items():
            if not isinstance(v, str):
                raise errors.InvalidArgument(f"{self._at(key)}.{k}: expected a string, got {_kind(v)}")
        return dict(value)

    def done(self) -> None:
        """Refuse the first key that was given (not null) but not read."""
        for key, value in self.data.items():
            if key in self._read or value is None:
                continue
            where = self._at(key)
            table_path = unsupported.table_path(_INDEX.sub("", where))
            if any(type(value) is type(ok) and value == ok for ok in unsupported.HARMLESS.get(table_path, ())):
                continue  # e.g. propagateTags: false (but not 0: JSON types are kept apart)
            raise errors.InvalidArgument(f"{where}: {unsupported.reason(self.operation, table_path)}")
