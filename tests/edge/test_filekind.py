"""not_a_file: what a path is, told from lstat/stat alone, for entries that would hang a reader."""

from __future__ import annotations

from specialfiles import NOT_FILES, make_special_entries

from edge.filekind import not_a_file


def test_says_what_each_entry_is_without_opening_it(tmp_path):
    folder = tmp_path / "card"
    folder.mkdir()
    (tmp_path / "real.png").write_bytes(b"frame")
    make_special_entries(folder, tmp_path / "real.png")
    for name, why in NOT_FILES.items():  # a FIFO opened here would block this test for ever
        assert why in (not_a_file(folder / name) or ""), name
    assert not_a_file(folder / "dir.png") == "is a directory, not a file"


def test_regular_files_symlinks_to_them_and_missing_paths_are_for_the_reader(tmp_path):
    (tmp_path / "a.png").write_bytes(b"frame")
    (tmp_path / "link.png").symlink_to("a.png")
    (tmp_path / "chain.png").symlink_to("link.png")
    for name in ("a.png", "link.png", "chain.png", "missing.png"):
        assert not_a_file(tmp_path / name) is None, name
    assert not_a_file(str(tmp_path / "a.png")) is None


def test_a_symlink_loop_is_not_followed(tmp_path):
    (tmp_path / "a.png").symlink_to("b.png")
    (tmp_path / "b.png").symlink_to("a.png")
    assert "is a symlink that cannot be followed" in not_a_file(tmp_path / "a.png")
