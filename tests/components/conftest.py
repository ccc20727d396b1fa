"""Fixtures shared by the component tests."""

from __future__ import annotations

import pytest

import styx.components.transport as transport


@pytest.fixture
def recorded(monkeypatch):
    """Every phase command by name: its keyword arguments (triggers as given), its depends_on and the
    resource."""
    calls: dict[str, dict] = {}
    real = transport.remote.Command

    def spy(name, **kw):
        res = real(name, **kw)
        calls[name] = {"kw": kw, "deps": list(kw["opts"].depends_on or []), "res": res}
        return res

    monkeypatch.setattr(transport.remote, "Command", spy)
    return calls
