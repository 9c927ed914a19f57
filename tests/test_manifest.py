"""The npe2 manifest is valid and every python_name it names imports."""

import importlib
from pathlib import Path

import pytest

npe2 = pytest.importorskip("npe2")

import napari_inter2former

MANIFEST = Path(napari_inter2former.__file__).with_name("napari.yaml")


def _manifest():
    return npe2.PluginManifest.from_file(MANIFEST)


def test_manifest_is_valid_and_matches_distribution():
    manifest = _manifest()
    assert manifest.name == "napari-inter2former"
    contributions = manifest.contributions
    assert [w.display_name for w in contributions.widgets] == ["Inter2Former"]
    assert {s.key for s in contributions.sample_data} == {"nuclei_2d", "nuclei_3d"}
    (writer,) = contributions.writers
    assert list(writer.layer_types) == ["labels"]
    assert set(writer.filename_extensions) == {".tif", ".tiff"}


@pytest.mark.parametrize("command", _manifest().contributions.commands, ids=lambda c: c.id)
def test_python_names_import(command):
    module, _, attr = command.python_name.partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


def test_sample_commands_return_layer_data():
    from napari_inter2former._sample_data import sample_nuclei_2d

    ((data, meta, kind),) = sample_nuclei_2d()
    assert kind == "image" and data.shape == (256, 256) and meta["name"]
