"""A FIX message read from its stored bytes, with the field access the codec uses on a quickfix message.

quickfix's Python binding hands over field values as UTF-8 decoded with surrogateescape (a byte that
is not UTF-8 becomes a lone surrogate) and cannot build a message back from such text, so a message
on the audit trail is read here, field by field, exactly as the live callback saw it.
"""

from __future__ import annotations

SOH = b"\x01"


class WireMessage:
    """Flat tag -> value of one message (the first of a repeated tag); its header is the same view."""

    __slots__ = ("_fields", "_raw")

    def __init__(self, raw: bytes) -> None:
        if SOH not in raw:
            raw = raw.replace(b"|", SOH)  # trails written before bytes kept | for SOH
        self._raw = raw
        self._fields: dict[int, str] = {}
        for part in raw.split(SOH):
            tag, sep, value = part.partition(b"=")
            if sep and tag.isdigit():
                self._fields.setdefault(int(tag), value.decode("utf-8", "surrogateescape"))

    def getHeader(self) -> "WireMessage":  # noqa: N802 - quickfix's names
        return self

    def isSetField(self, tag: int) -> bool:  # noqa: N802
        return tag in self._fields

    def getField(self, tag: int) -> str:  # noqa: N802
        try:
            return self._fields[tag]
        except KeyError:
            raise KeyError(f"field {tag} is not in the message") from None

    def toString(self) -> str:  # noqa: N802
        return self._raw.decode("utf-8", "surrogateescape")
