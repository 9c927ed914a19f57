"""A stand-in for the network in predictor tests (imported by name, like ``_qt/widget_helpers``)."""

import numpy as np
import torch

from napari_inter2former.constants import DEFINITELY_FOREGROUND, POSSIBLY_FOREGROUND


class ClickDiscModel(torch.nn.Module):
    """Logits +10 where the reference map says foreground, -10 elsewhere.

    Foreground codes are the positive click discs and possibly-foreground pixels
    (a prior mask, then the previous prediction), so every mask follows from
    the clicks. ``encoded_shapes`` records the (rows, cols) of each encoded view.
    """

    model_id = "stub"

    def __init__(self, image_size: int = 128):
        super().__init__()
        self.image_size = image_size
        self.encoded_shapes = []
        self.decode_calls = 0

    def preprocess(self, rgb):
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()

    def encode(self, image):
        self.encoded_shapes.append(tuple(image.shape[-2:]))
        return tuple(image.shape[-2:])

    def decode(self, features, ref, boundary_rule=None, dlu_rule="threshold"):
        self.decode_calls += 1
        fg = (ref == DEFINITELY_FOREGROUND) | (ref == POSSIBLY_FOREGROUND)
        return torch.where(fg, 10.0, -10.0)


class CornerBlockModel(ClickDiscModel):
    """:class:`ClickDiscModel` that also calls the grid's top-left 8 x 8 corner foreground.

    Not flip-equivariant: the corner is foreground whatever the view shows, and only
    weakly (logit 4, probability 0.98), so averaged with a view that calls it
    background it drops out.
    """

    def decode(self, features, ref, boundary_rule=None, dlu_rule="threshold"):
        logits = super().decode(features, ref, boundary_rule, dlu_rule)
        logits[..., :8, :8] = 4.0
        return logits
