"""napari-inter2former: click-to-segment cells and nuclei with Inter2Former.

torch is imported lazily: importing this package does not import torch, napari or Qt.
"""

__version__ = "0.1.0"

__all__ = ["Predictor", "build_model", "__version__"]


def __getattr__(name):
    if name == "Predictor":
        from .predictor import Predictor

        return Predictor
    if name == "build_model":
        from .model.build import build_model

        return build_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
