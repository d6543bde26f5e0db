"""A FIX message as flat text, with the field access the codec uses on a quickfix message.

quickfix's Python binding hands over field values as UTF-8 decoded with surrogateescape (a byte that
is not UTF-8 becomes a lone surrogate) and cannot build a message back from such text, so a message
on the audit trail is read here, field by field, exactly as the live callback saw it. A live message is
read here too, from its one toString(): every call into quickfix releases the GIL, so reading fields one
call at a time hands the interpreter to another thread at each field when the gateway is busy.
"""

from __future__ import annotations

SOH = "\x01"


class WireMessage:
    """Flat tag -> value of one message (the first of a repeated tag); its header is the same view."""

    __slots__ = ("_fields", "_text")

    def __init__(self, raw: bytes | str) -> None:
        """raw: a message's bytes as stored, or the text quickfix's toString() gives (surrogateescape)."""
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "surrogateescape")
        if SOH not in text:
            text = text.replace("|", SOH)  # trails written before bytes kept | for SOH
        self._text = text
        fields: dict[int, str] = {}
        for part in text.split(SOH):
            tag, sep, value = part.partition("=")
            if sep and tag.isdigit() and tag.isascii() and int(tag) not in fields:
                fields[int(tag)] = value
        self._fields = fields

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
        return self._text
