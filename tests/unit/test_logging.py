"""The server's log set-up: one handler for everything, libvips' chatter kept out."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from konvrt.observability import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, vips = logging.getLogger(), logging.getLogger("pyvips")
    handlers, level, vips_level = root.handlers[:], root.level, vips.level
    yield
    root.handlers[:], root.level = handlers, level
    vips.setLevel(vips_level)


@pytest.mark.usefixtures("restore_logging")
def test_libvips_narration_is_kept_out_but_its_warnings_come_through() -> None:
    configure_logging("json")
    vips = logging.getLogger("pyvips")
    assert not vips.isEnabledFor(logging.INFO)  # "VIPS: thumbnail …" on every conversion
    assert vips.isEnabledFor(logging.WARNING)
