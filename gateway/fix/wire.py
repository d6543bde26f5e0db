"""A FIX message as flat text, with the field access the codec uses on a quickfix message.

quickfix's Python binding hands over field values as UTF-8 decoded with surrogateescape (a byte that
is not UTF-8 becomes a lone surrogate) and cannot build a message back from such text, so a message
on the audit trail is read here, field by field, exactly as the live callback saw it. A live message is
read here too, from its one toString(): every call into quickfix releases the GIL, so reading fields one
call at a time hands the interpreter to another thread at each field when the gateway is busy.
"""

from __future__ import annotations

SOH = "\x01"
_NEEDLES: dict[int, str] = {}  # tag -> what precedes its value in the text: SOH, the tag, "="


def _needle(tag: int) -> str:
    needle = _NEEDLES[tag] = f"{SOH}{tag}="
    return needle


class WireMessage:
    """One message's fields by tag (the first of a repeated tag); its header is the same view.

    Fields are found in the text when asked for, not parsed up front: a callback reads a handful of a message's
    fields, and finding one is a C-level search, where splitting every field out costs a loop in Python.
    """

    __slots__ = ("_text", "_fields")

    def __init__(self, raw: bytes | str) -> None:
        """raw: a message's bytes as stored, or the text quickfix's toString() gives (surrogateescape)."""
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "surrogateescape")
        if SOH not in text:
            text = text.replace("|", SOH)  # trails written before bytes kept | for SOH
        self._text = text
        self._fields = SOH + text  # every field, the first too, follows an SOH

    def getHeader(self) -> "WireMessage":  # noqa: N802 - quickfix's names
        return self

    def isSetField(self, tag: int) -> bool:  # noqa: N802
        return (_NEEDLES.get(tag) or _needle(tag)) in self._fields

    def getField(self, tag: int) -> str:  # noqa: N802
        fields = self._fields
        needle = _NEEDLES.get(tag) or _needle(tag)
        at = fields.find(needle)
        if at < 0:
            raise KeyError(f"field {tag} is not in the message")
        start = at + len(needle)
        end = fields.find(SOH, start)
        return fields[start:] if end < 0 else fields[start:end]

    def toString(self) -> str:  # noqa: N802
        return self._text
