import numpy as np
import pytest
from widget_helpers import wait_idle

from napari_inter2former._sample_data import nuclei_2d

pytestmark = pytest.mark.gui


def test_screenshot_with_widget_docked(make_napari_viewer, qtbot, tmp_path):
    """Render the viewer (canvas + docked widget) after a few clicks; save a PNG."""
    from skimage.io import imread

    from napari_inter2former._qt.widget import Inter2FormerWidget
    from napari_inter2former.testing import FakePredictor

    image, truth = nuclei_2d()
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1200, 720)
    viewer.add_image(image, name="nuclei 2d")
    widget = Inter2FormerWidget(viewer, predictor_factory=FakePredictor)
    viewer.window.add_dock_widget(widget, name="Inter2Former")
    for object_id in (1, 2, 3):
        rows, cols = np.nonzero(truth == object_id)
        widget.add_click(0, int(np.median(rows)), int(np.median(cols)))
        wait_idle(qtbot, widget)
        widget.commit()
    rows, cols = np.nonzero(truth == 4)
    widget.add_click(0, int(np.median(rows)), int(np.median(cols)))
    widget.add_click(0, int(np.median(rows)), int(np.median(cols)) + 30, positive=False)
    wait_idle(qtbot, widget)
    viewer.reset_view()
    path = tmp_path / "viewer_with_widget.png"
    viewer.window.screenshot(str(path), canvas_only=False)
    shot = imread(path)
    assert shot.shape[0] >= 400 and shot.shape[1] >= 800
    assert shot[..., :3].std() > 10  # not a blank frame
    assert set(np.unique(widget.labels.data)) == {0, 1, 2, 3, 4}


@pytest.mark.slow
def test_widget_drives_the_real_model(make_napari_viewer, qtbot):
    """The widget with the real Inter2Former (tiny config) writes what the predictor returns."""
    pytest.importorskip("torch")
    from napari_inter2former._qt.widget import Inter2FormerWidget
    from napari_inter2former.model.build import build_model
    from napari_inter2former.predictor import Predictor

    image, _truth = nuclei_2d()
    image = image[:128, :128]
    model = build_model("tiny")
    viewer = make_napari_viewer()
    layer = viewer.add_image(image, name="nuclei")
    widget = Inter2FormerWidget(viewer, predictor_factory=lambda: Predictor(model, num_threads=1))
    widget.add_click(0, 40, 50)
    wait_idle(qtbot, widget, timeout=30000)
    widget.add_click(0, 90, 20, positive=False)
    wait_idle(qtbot, widget, timeout=30000)
    reference = Predictor(model, num_threads=1)
    reference.set_image(image, contrast_limits=tuple(layer.contrast_limits))
    reference.add_click(40, 50)
    expected = reference.add_click(90, 20, positive=False)
    np.testing.assert_array_equal(widget.labels.data == 1, expected)
    assert len(widget.latencies) == 2
