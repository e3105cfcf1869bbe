"""Fixtures for the image tests."""

from __future__ import annotations

import pytest
from PIL import ImageFile


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails the test if any picture data is decoded: for what must be refused from its header alone.
    (Build the inputs before it applies: in a module fixture, or with Image.new and save.)"""

    def load(self):
        raise AssertionError(f"decoded a {self.size} {self.format} that should have been refused from its header")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
