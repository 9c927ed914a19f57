"""napari wiring (Qt): the dock widget, layer helpers and background workers."""

from .widget import Inter2FormerWidget

__all__ = ["Inter2FormerWidget"]
