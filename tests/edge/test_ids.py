"""Record ids: UUIDv7, and ids derived from one (a clip's several records)."""

import re

import pytest

from edge.ids import derived_uuid7, uuid7

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_derived_ids_are_uuid7_stable_distinct_and_keep_the_time():
    base = uuid7()
    first = [derived_uuid7(base, n) for n in range(50)]
    again = [derived_uuid7(base, n) for n in range(50)]
    assert first == again  # a clip classified twice makes the same ids
    assert len(set(first)) == 50 and base not in first
    assert all(UUID7.match(i) for i in first)
    assert all(i[:18] == base[:18] for i in first)  # the 48-bit time, version and rand_a are kept
    assert derived_uuid7(uuid7(), 0) != first[0]


def test_derived_ids_need_a_uuid7():
    with pytest.raises(ValueError, match="not a UUIDv7"):
        derived_uuid7("01a21485-94c3-498e-80ba-a8b5076511dd", 0)
