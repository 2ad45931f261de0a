"""Fixtures of the watch loop's unit tests."""

from __future__ import annotations

import os
from typing import Iterator

import pytest


@pytest.fixture
def umask_000() -> Iterator[None]:
    """Files made while the umask lets everyone read them: a private file must stay private anyway."""
    old = os.umask(0)
    yield
    os.umask(old)
