"""Data dictionaries: quickfix's standard FIX 4.2/4.4 files merged with our custom tags."""

from __future__ import annotations

import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path

FILES = {"FIX.4.2": "FIX42.xml", "FIX.4.4": "FIX44.xml"}


def custom_fields_file() -> Path:
    """fix_specs/custom_fields.xml: packaged with the wheel, or at the top of a source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "fix_specs" / "custom_fields.xml"
    if packaged.exists():
        return packaged
    return Path(__file__).resolve().parents[2] / "fix_specs" / "custom_fields.xml"


def standard_spec_dir() -> Path:
    """Where the quickfix wheel installed its dictionaries (<prefix>/share/quickfix)."""
    candidates = [Path(sys.prefix), Path(sysconfig.get_path("data"))]
    for prefix in candidates:
        directory = prefix / "share" / "quickfix"
        if (directory / "FIX44.xml").exists():
            return directory
    raise FileNotFoundError(
        "quickfix's FIX dictionaries were not found under "
        + ", ".join(str(p / "share" / "quickfix") for p in candidates)
        + "; set fix.spec_dir to a folder holding FIX42.xml and FIX44.xml"
    )


def merge(standard: Path, custom: Path, target: Path) -> None:
    """Write `standard` with the fields, message additions and relaxed requirements of `custom` to `target`."""
    try:
        tree = ET.parse(standard)
    except ET.ParseError as exc:
        raise ValueError(f"{standard}: not a FIX data dictionary: {exc}") from None
    root = tree.getroot()
    extra = ET.parse(custom).getroot()
    fields = _section(root, "fields", standard)
    messages = {m.get("name"): m for m in root.iter("message")}
    known = {f.get("number") for f in fields}
    for field in _section(extra, "fields", custom):
        if field.get("number") not in known:
            fields.append(field)
    for message in _section(extra, "messages", custom):
        target_message = messages.get(message.get("name"))
        if target_message is None:
            continue
        present = {f.get("name") for f in target_message.iter("field")}
        for field in message:
            if field.get("name") not in present:
                target_message.append(field)
    for message in _section(extra, "optional", custom):
        relaxed = set(message.get("fields", "").split(","))
        for child in messages.get(message.get("name"), ()):  # a venue's own dictionary may lack some
            if child.get("name") in relaxed:
                child.set("required", "N")
    target.parent.mkdir(parents=True, exist_ok=True)
    tree.write(target, encoding="UTF-8", xml_declaration=True)


def _section(root: ET.Element, name: str, path: Path) -> ET.Element:
    section = root.find(name)
    if section is None:
        raise ValueError(f"{path}: no <{name}> section")
    return section


def prepare(out_dir: Path, spec_dir: Path | None = None) -> dict[str, Path]:
    """Merged dictionary per BeginString, written under out_dir."""
    source = spec_dir or standard_spec_dir()
    custom = custom_fields_file()
    paths = {}
    for begin_string, name in FILES.items():
        target = out_dir / name
        merge(source / name, custom, target)
        paths[begin_string] = target
    return paths
