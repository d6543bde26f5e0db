"""The quickfix stub mypy reads (stubs/quickfix) names only what the installed quickfix has."""

from __future__ import annotations

import ast
from pathlib import Path

import quickfix

STUB = Path(__file__).resolve().parents[2] / "stubs" / "quickfix" / "__init__.pyi"


def stub_classes() -> dict[str, list[str]]:
    """Public class name -> the methods and bases the stub gives it (a private class only lends its methods)."""
    tree = ast.parse(STUB.read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    out: dict[str, list[str]] = {}
    for name, node in classes.items():
        if name.startswith("_"):
            continue
        members = [f.name for f in node.body if isinstance(f, ast.FunctionDef) and f.name != "__init__"]
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id.startswith("_"):
                members += [
                    f.name for f in classes[base.id].body if isinstance(f, ast.FunctionDef) and f.name != "__init__"
                ]
        out[name] = members
    return out


def test_every_stubbed_class_and_method_exists_in_quickfix():
    classes = stub_classes()
    assert {"Message", "Session", "SessionID", "Application", "ThreadedSocketAcceptor"} <= set(classes)
    missing: list[str] = []
    for name, members in classes.items():
        cls = getattr(quickfix, name, None)
        if cls is None:
            missing.append(name)
        else:
            missing += [f"{name}.{member}" for member in members if not hasattr(cls, member)]
    assert missing == []


def test_stubbed_exceptions_are_exceptions_in_quickfix():
    tree = ast.parse(STUB.read_text())
    stubbed = [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(isinstance(b, ast.Name) and b.id in ("Exception", "FIXException") for b in node.bases)
    ]
    assert "RejectLogon" in stubbed
    assert [name for name in stubbed if not issubclass(getattr(quickfix, name), Exception)] == []
