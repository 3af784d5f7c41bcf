"""tree.walk_tree and tree.remove_tree: any depth (past the recursion limit and PATH_MAX), no symlink followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cobot_security.tree import remove_tree, walk_tree


def _chain(top: Path, depth: int, link_to: Path) -> None:
    """``top/d/d/...`` built through descriptors (its full path is longer than PATH_MAX)."""
    fd = os.open(top, os.O_RDONLY)
    try:
        for level in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
            if level % 1000 == 0:
                os.symlink(link_to, "out", dir_fd=fd)
                with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "w") as handle:
                    handle.write("x")
    finally:
        os.close(fd)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    victim = tmp_path / "outside"
    (victim / "sub").mkdir(parents=True)
    (victim / "sub" / "precious").write_text("x")
    return victim


def test_removes_a_chain_deeper_than_recursion_and_path_limits(tmp_path: Path, outside: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    _chain(top, 2500, outside)  # 5,000 characters of path, 2,500 levels of recursion
    for index in range(50):
        (top / f"wide{index}").mkdir()
        (top / f"wide{index}" / "file").write_text("x")
    os.symlink(outside / "sub", top / "dirlink")

    remove_tree(top)

    assert not os.path.lexists(top)
    assert (outside / "sub" / "precious").read_text() == "x"


def test_a_link_or_file_given_is_unlinked_and_a_missing_path_raises(tmp_path: Path, outside: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(outside)
    remove_tree(link)
    assert not os.path.lexists(link) and (outside / "sub" / "precious").exists()
    with pytest.raises(FileNotFoundError):
        remove_tree(tmp_path / "missing")
    remove_tree(tmp_path / "missing", ignore_errors=True)


def test_walk_lists_like_os_walk_and_never_enters_a_link(tmp_path: Path, outside: Path) -> None:
    """Same (directory, dirs, files) as os.walk: a link to a directory listed with the directories
    (its type needs a stat through the listed directory), a link to a file or a dangling one with
    the files; a linked top is walked, a linked directory below it is not entered."""
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "file").write_text("x")
    (top / "a" / "to_dir").symlink_to(outside)
    (top / "a" / "to_file").symlink_to(outside / "sub" / "precious")
    (top / "a" / "dangling").symlink_to(tmp_path / "nothing")
    (top / "a" / "b" / "deep").write_text("x")
    (tmp_path / "linked_top").symlink_to(top)

    def normal(walk: object) -> list[tuple[str, list[str], list[str]]]:
        return sorted((os.path.relpath(d, tmp_path), sorted(ds), sorted(fs)) for d, ds, fs in walk)

    expected = normal(os.walk(top))
    assert normal(walk_tree(top)) == expected
    assert ("top/a", ["b", "to_dir"], ["dangling", "file", "to_file"]) in expected
    linked = normal(walk_tree(tmp_path / "linked_top"))
    assert [entry[1:] for entry in linked] == [entry[1:] for entry in expected]
