"""Training of the edge net + decoder + upsampler on a frozen MobileSAM encoder.

``inter2former-train`` (:func:`.train.main`); see ``docs/training.md``.
Importing this package does not import napari or Qt.
"""

from .config import TrainConfig, load_config
from .losses import normalized_focal_loss
from .synthetic import SyntheticImage, synthetic_image

__all__ = [
    "SyntheticImage",
    "TrainConfig",
    "load_config",
    "normalized_focal_loss",
    "synthetic_image",
]
