"""Open napari with the 2-D nuclei sample and the Inter2Former widget docked."""

from __future__ import annotations

__all__ = ["main", "open_viewer"]


def open_viewer(sample: str = "2d", predictor_factory=None, show: bool = True):
    """A viewer holding a sample image and the docked widget; returns (viewer, widget)."""
    import napari

    from .._sample_data import sample_nuclei_2d, sample_nuclei_3d
    from .widget import Inter2FormerWidget

    (data, meta, _), = sample_nuclei_3d() if sample == "3d" else sample_nuclei_2d()
    viewer = napari.Viewer(show=show, title="Inter2Former")
    viewer.add_image(data, **meta)
    widget = Inter2FormerWidget(viewer, predictor_factory=predictor_factory)
    viewer.window.add_dock_widget(widget, name="Inter2Former", area="right")
    viewer.layers.selection.active = widget.points
    return viewer, widget


def main(sample: str = "2d") -> None:
    import napari

    open_viewer(sample)
    napari.run()
