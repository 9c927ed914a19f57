"""Fixtures for the widget tests: synthetic images and a widget on a fake predictor."""

from __future__ import annotations

import pytest

from napari_inter2former.testing import FakePredictor

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


@pytest.fixture
def make_widget(make_napari_viewer, qtbot):
    """Build a viewer with ``image`` and the widget on a fake predictor."""

    def make(image, predictor=None, **layer_kwargs):
        from napari_inter2former._qt.widget import Inter2FormerWidget

        viewer = make_napari_viewer()
        viewer.add_image(image, name="img", **layer_kwargs)
        predictor = predictor or FakePredictor()
        widget = Inter2FormerWidget(viewer, predictor_factory=lambda: predictor)
        viewer.window.add_dock_widget(widget, name="Inter2Former")
        return viewer, widget

    return make
