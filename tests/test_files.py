"""geo.atomic.write_atomically: the target is replaced whole, and a failed write leaves no temp file."""

import pytest

from geo.atomic import write_atomically


def test_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    write_atomically(target, "新,内容\n".encode())
    assert target.read_text(encoding="utf-8") == "新,内容\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_failure_keeps_the_old_file_and_removes_the_temp_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomically(target, "not bytes")  # the write fails after the temp file exists
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
