"""INPUT... -> ordered unique absolute paths: folders, globs, manifests, and inputs that name nothing."""

from __future__ import annotations

import csv
import os

import pytest

from alexnet_export.batch.inputs import collect_paths
from alexnet_export.errors import ArgumentError


def test_a_folder_is_searched_recursively_for_image_files_only(collection):
    found = collect_paths(collection.root)
    assert found == sorted(map(str, collection.all))  # every image once, in find_images' order
    assert all(os.path.isabs(path) for path in found)
    assert str(collection.folder_named_like_an_image) not in found  # a folder named x.jpg is searched, not read
    assert str(collection.folder_named_like_an_image / "inside.png") in found
    assert not any(path.endswith("notes.txt") for path in found)


def test_order_is_as_given_and_each_path_appears_once(collection, monkeypatch):
    monkeypatch.chdir(collection.root)
    first = collection.good[5]
    found = collect_paths([os.path.relpath(first), collection.root / "broken", str(first), collection.root])
    assert found[0] == str(first)  # a relative input is made absolute, then deduplicated
    assert found[1:5] == sorted(map(str, collection.bad))
    assert len(found) == len(set(found)) == len(collection.all)


def test_a_glob_keeps_the_images_and_folders_it_matches(collection):
    pngs = collect_paths(str(collection.root / "generated" / "**" / "*.png"))
    assert pngs == sorted(str(p) for p in collection.good if "generated" in p.parts and p.suffix == ".png")
    folders = collect_paths(str(collection.root / "generated" / "*"))  # matches folders (and notes.txt)
    assert folders == sorted(str(p) for p in collection.good if "generated" in p.parts)


def test_a_text_manifest_lists_paths_relative_to_its_folder(collection):
    photo = next(p for p in collection.good if p.parent.name == "photos")
    manifest = collection.root / "list.txt"
    manifest.write_text(f"# picked by hand\n\nphotos/{photo.name}\n  {collection.bad[0]}  \ngone.jpg\ndir.jpg\n")
    try:
        found = collect_paths(manifest)
    finally:
        manifest.unlink()
    # Entries are taken as listed: a missing file or a folder becomes an error row later, not a failure now.
    assert found == [str(photo), str(collection.bad[0]), str(collection.root / "gone.jpg"),
                     str(collection.folder_named_like_an_image)]


def test_csv_and_parquet_manifests_read_their_path_column(collection, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    images = [str(p) for p in collection.good[:3]]
    with open(tmp_path / "m.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "file"])
        writer.writerows([["cat", path] for path in images])
    pq.write_table(pa.table({"file": images[::-1], "label": ["x"] * 3}), tmp_path / "m.parquet")
    assert collect_paths(tmp_path / "m.csv", path_column="file") == images
    assert collect_paths([tmp_path / "m.parquet", tmp_path / "m.csv"], path_column="file") == images[::-1]
    with pytest.raises(ArgumentError, match=r"no column 'path'; its columns are 'label', 'file'") as caught:
        collect_paths(tmp_path / "m.csv")
    assert caught.value.argument == "path_column"


@pytest.mark.parametrize("make_input, message", [
    (lambda root, tmp: tmp / "nothing-here", r"input .*nothing-here does not exist; expected an image file, a folder"),
    (lambda root, tmp: str(root / "**" / "*.webp"), r"pattern .*\*\.webp matches no images"),
    (lambda root, tmp: tmp, r"no images found in .*; expected files with one of the suffixes .jpg"),
])
def test_inputs_that_name_nothing_are_refused(collection, tmp_path, make_input, message):
    with pytest.raises(ArgumentError, match=message) as caught:
        collect_paths(make_input(collection.root, tmp_path))
    assert caught.value.argument == "inputs"
