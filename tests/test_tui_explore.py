"""The core's explore API: per-layer statuses, folder sizes, history, filters and the image comparison,
checked against figures worked out by hand from the layers each test writes."""

from __future__ import annotations

from pathlib import Path

from builders import image_of, tar_layer

from layerscope.analysis.explore import ROOT, Event, Exploration, ExploreRecorder, Selection, Status, compare
from layerscope.analysis.inspect import inspect_image
from layerscope.model import ImageReport
from layerscope.sources import SourceOptions, open_image

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"

LAYERS = [
    [("file", "/app/a", 100), ("file", "/app/b", 200), ("file", "/etc/conf", 10), ("file", "/data/x", 50)],
    [("file", "/app/a", 150), ("file", "/app/c", 30), ("file", "/.wh.data", b"")],
    [("file", "/app/.wh..wh..opq", b""), ("file", "/app/d", 5), ("symlink", "/etc/link", "conf")],
]


def explore(path: Path) -> tuple[ImageReport, Exploration]:
    recorder = ExploreRecorder()
    with open_image(str(path), SourceOptions()) as image:
        report = inspect_image(image, recorder=recorder).report
    return report, recorder.finish()


def built(tmp_path: Path, layers: list[list[tuple[str, str, bytes | str | int]]], name: str = "i.tar") -> Path:
    archive = tmp_path / name
    archive.write_bytes(image_of([tar_layer(entries) for entries in layers]))
    return archive


def states(e: Exploration, folder: str, layer: int) -> dict[str, tuple[str, int]]:
    pid = e.id_of(folder)
    assert pid is not None
    return {row.name: (row.status.letter, row.size) for row in e.children(pid, layer)}


def test_each_layer_shows_what_it_added_modified_and_removed(tmp_path: Path) -> None:
    _, e = explore(built(tmp_path, LAYERS))
    assert e.layer_count == 3
    assert states(e, "/app", 0) == {"a": ("A", 100), "b": ("A", 200)}
    assert states(e, "/app", 1) == {"a": ("M", 150), "b": (" ", 200), "c": ("A", 30)}
    assert states(e, "/app", 2) == {"a": ("R", 150), "b": ("R", 200), "c": ("R", 30), "d": ("A", 5)}
    assert states(e, "/", 1) == {"app": (" ", 380), "etc": (" ", 10), "data": ("R", 50)}
    assert states(e, "/", 2)["app"] == (" ", 5)
    assert states(e, "/etc", 2) == {"conf": (" ", 10), "link": ("A", 0)}


def test_folders_carry_the_bytes_the_layer_added_and_removed_under_them(tmp_path: Path) -> None:
    _, e = explore(built(tmp_path, LAYERS))
    app = {row.name: row for row in e.children(ROOT, 1)}["app"]
    assert (app.added, app.removed) == (150 + 30, 100)  # a rewritten (its old copy replaced), c new
    app = {row.name: row for row in e.children(ROOT, 2)}["app"]
    assert (app.added, app.removed) == (5, 150 + 200 + 30)


def test_history_lists_every_layer_that_wrote_or_removed_a_path(tmp_path: Path) -> None:
    _, e = explore(built(tmp_path, LAYERS))
    a, x, conf = (e.id_of(p) for p in ("/app/a", "/data/x", "/etc/conf"))
    assert a is not None and x is not None and conf is not None
    assert e.history(a) == [Event(0, "added", 100), Event(1, "modified", 150), Event(2, "removed", 150)]
    assert e.history(x) == [Event(0, "added", 50), Event(1, "removed", 50)]
    assert e.history(conf) == [Event(0, "added", 10)]


def shown(e: Exploration, selection: Selection | None) -> set[str]:
    """Every path the selection shows, asked path by path."""
    assert selection is not None
    return {e.path(pid) for pid in range(1, e.path_count) if pid in selection}


def test_sorting_and_filters_are_answered_by_the_model(tmp_path: Path) -> None:
    _, e = explore(built(tmp_path, LAYERS))
    app = e.id_of("/app")
    assert app is not None
    assert [row.name for row in e.children(app, 1)] == ["b", "a", "c"]
    assert [row.name for row in e.children(app, 1, by="name")] == ["a", "b", "c"]
    keep = e.matching(1, "C")
    assert keep is not None
    assert {e.path(pid) for pid in keep} == {"/app/c", "/etc", "/etc/conf"}
    assert shown(e, keep) == {"/app", "/app/c", "/etc", "/etc/conf"}
    added = e.matching(1, statuses=frozenset({Status.ADDED}))
    assert added is not None and shown(e, added) == {"/app", "/app/c"}
    removed = e.matching(1, statuses=frozenset({Status.REMOVED}))
    assert removed is not None and shown(e, removed) == {"/data", "/data/x"}
    assert shown(e, e.matching(2, "conf", frozenset({Status.UNCHANGED}))) == {"/etc", "/etc/conf"}
    assert e.matching(1) is None
    narrower = e.matching(1, "c/", within=keep)  # typing on: only the previous matches are tested
    assert narrower is not None and {e.path(pid) for pid in narrower} == {"/etc/conf"}
    assert list(narrower) == list(e.matching(1, "c/") or [])
    assert shown(e, e.matching(1, "conf", within=keep)) == {"/etc", "/etc/conf"}
    assert [row.name for row in e.children(app, 1, keep=added)] == ["c"]


def test_compare_marks_what_the_new_image_added_changed_and_dropped(tmp_path: Path) -> None:
    _, old = explore(built(tmp_path, LAYERS[:2], "old.tar"))
    _, new = explore(built(tmp_path, [[("file", "/app/a", 150), ("file", "/app/z", 7), ("file", "/etc/conf", 11)]]))
    d = compare(old, new)
    assert states(d, "/app", 1) == {"a": (" ", 150), "b": ("R", 200), "c": ("R", 30), "z": ("A", 7)}
    assert states(d, "/etc", 1) == {"conf": ("M", 11)}


def test_package_files_and_categories_agree_with_the_report() -> None:
    report, e = explore(SAMPLES / "before.tar")
    for package in report.packages:
        files = e.package_files((package.type, package.name, package.version, package.location))
        assert (len(files), sum(size for _, size in files)) == (package.files, package.size), package.name
    totals: dict[str, int] = {}
    for path, (_, size) in e.final().items():
        pid = e.id_of(path)
        assert pid is not None
        placed = e.classification(pid)
        if placed is not None:
            totals[placed[0]] = totals.get(placed[0], 0) + size
    assert {c.name: c.size for c in report.categories if c.size} == totals


def test_final_files_match_the_reports_figures() -> None:
    report, e = explore(SAMPLES / "before.tar")
    final = e.final()
    assert sum(size for _, size in final.values()) == report.squashed_size
    assert sum(1 for kind, _ in final.values() if kind.name != "DIR") == report.files
    gcc = next(p for p in report.packages if p.name == "gcc-12")
    owned = e.package_files((gcc.type, gcc.name, gcc.version, gcc.location))
    pid = e.id_of(owned[0][0])
    assert pid is not None and ("deb", "gcc-12", gcc.version, gcc.location) in e.owners(pid)
