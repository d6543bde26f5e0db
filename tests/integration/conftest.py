"""Fixtures shared by the integration tests: whole local stacks (venue simulators, gateway, OMS) over FIX."""

from __future__ import annotations

import pytest

from gateway import topology
from gateway.stack import Stack


@pytest.fixture
def make_stack(tmp_path):
    stacks = []

    def make(**kwargs) -> Stack:
        gateway_cfg, venues_cfg = topology.build(
            tmp_path,
            sim_overrides=kwargs.pop("sim_overrides", None),
            gateway_overrides=kwargs.pop("gateway_overrides", None),
        )
        stack = Stack(gateway_cfg, venues_cfg, tmp_path, **kwargs).__enter__()
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.__exit__(None, None, None)


@pytest.fixture
def stack(make_stack) -> Stack:
    return make_stack()
