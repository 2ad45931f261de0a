"""What every model shares: ``to_dict``/``from_dict`` over attrs fields, and how a number is shown.

Pure: no I/O. ``to_dict(include_raw=False)`` leaves out the ``raw`` input text, for compact records;
a field whose metadata says ``omit_if_none`` is left out while it is None, so records written before
the field existed stay byte-for-byte the same.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Dict, Mapping, Optional, Type, TypeVar, cast

import attr

_M = TypeVar("_M", bound="_Model")


def hex_text(value: Optional[int]) -> str:
    """An address or id as ``0x1f``; ``?`` for a value that is not known."""
    return "?" if value is None else f"0x{value:x}"


class _Model:
    """to_dict/from_dict shared by the models; each names its nested model fields."""

    __slots__ = ()

    # field name -> model class, for fields holding a model or a tuple of models
    _nested: ClassVar[Dict[str, Type["_Model"]]] = {}

    def to_dict(self, include_raw: bool = True) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for field in attr.fields(cast(Any, type(self))):
            if field.name == "raw" and not include_raw:
                continue
            value = getattr(self, field.name)
            if value is None and field.metadata.get("omit_if_none"):
                continue  # an optional part that was not fetched: the record stays as it was without it
            if value is False and field.metadata.get("omit_if_false"):
                continue  # a flag that is rarely set: records without it read as before
            if isinstance(value, tuple):
                value = [v.to_dict(include_raw) if isinstance(v, _Model) else v for v in value]
            elif isinstance(value, _Model):
                value = value.to_dict(include_raw)
            elif isinstance(value, enum.Enum):
                value = value.value  # a str Enum (StopKind) is written as its plain value
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls: Type[_M], data: Mapping[str, Any]) -> _M:
        """Build from ``to_dict()`` output; missing keys take the field default, unknown keys are refused."""
        names = {f.name for f in attr.fields(cast(Any, cls))}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__}.from_dict: unknown keys {sorted(unknown)}")
        kwargs: Dict[str, Any] = {}
        for key, value in data.items():
            sub = cls._nested.get(key)
            if sub is not None and isinstance(value, list):
                value = tuple(sub.from_dict(v) for v in value)
            elif sub is not None and isinstance(value, Mapping):
                value = sub.from_dict(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)
