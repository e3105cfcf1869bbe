"""Topic names: a device id must be one topic level, or a unit could write under another's prefix."""

import pytest

from edge.delivery.topics import split, topic


def test_topics_and_back():
    assert topic("unit-7", "detection") == "naturevision/unit-7/detection"
    assert split("naturevision/unit-7/thumbnail/abc") == ("unit-7", "thumbnail/abc")
    assert split("other/unit-7/detection") is None


@pytest.mark.parametrize("device", ["", "unit/7", "unit+", "#", "a\0b"])
def test_device_ids_that_cannot_be_a_topic_level_are_refused(device):
    with pytest.raises(ValueError, match="cannot be part of an MQTT topic"):
        topic(device, "detection")
