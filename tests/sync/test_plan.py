"""The planner: from what the workspace holds to HEAD's tree, including a resumed, interrupted sync."""

from __future__ import annotations

from services.sync.gitrepo import Entry
from services.sync.plan import Desired, desired, full, incremental


def tree(**files: str) -> dict[str, Entry]:
    return {path.replace("__", "/"): Entry("100644", blob, 10) for path, blob in files.items()}


def test_incremental_rename_edit_delete_and_folders() -> None:
    old = tree(a="A", d__x="X", d__e__y="Y")
    new = desired(tree(a="A2", n__x="X"))
    plan = incremental(old, set(), new, {})
    assert plan.deletes == ["d/e/y", "d/x"]
    assert plan.rmdirs == ["d/e", "d"]  # deepest first
    assert plan.mkdirs == ["n"]
    assert plan.uploads == [("a", "A2"), ("n/x", "X")]


def test_resume_skips_what_landed_and_repairs_what_a_newer_head_reverted() -> None:
    old = tree(a="A1", b="B1")
    # An interrupted sync toward a newer HEAD had uploaded a=A2 and deleted b; HEAD then went back
    # to a=A1 (reverted) and still has b: both must be put back, though old..new shows no change.
    progress = {"a": "A2", "b": ""}
    plan = incremental(old, set(), desired(tree(a="A1", b="B1", c="C")), progress)
    assert plan.uploads == [("a", "A1"), ("b", "B1"), ("c", "C")]
    assert plan.deletes == []
    # Whereas uploads that match the target are not repeated.
    plan = incremental(old, set(), desired(tree(a="A2", c="C")), {"a": "A2", "c": "C"})
    assert plan.uploads == [] and plan.deletes == ["b"]


def test_full_sync_deletes_strays_in_one_call_per_unwanted_folder() -> None:
    want = desired(tree(keep__f="F", top="T"))
    listed_files = {"keep/f", "keep/stray", "old/deep/x", "old/y", "top"}
    listed_dirs = {"keep", "old", "old/deep"}
    plan = full(listed_files, listed_dirs, want, {"top": "T"})
    assert plan.rmtrees == ["old"]
    assert plan.deletes == ["keep/stray"]
    assert plan.uploads == [("keep/f", "F")]  # top was uploaded before the interruption
    assert plan.mkdirs == []


def test_what_is_not_mirrored() -> None:
    entries = {
        "big.bin": Entry("100644", "B", 10 * 1024 * 1024 + 1),
        "link": Entry("120000", "L", 4),
        "sub": Entry("160000", "S", -1),
        "run.sh": Entry("100755", "R", 5),
        "bad-\udcff.txt": Entry("100644", "N", 1),
    }
    want = desired(entries)
    assert want == Desired(
        files={"run.sh": "R"},
        skipped_large=["big.bin"],
        rejected={"bad-\ufffd.txt": "the name is not valid UTF-8"},
    )
