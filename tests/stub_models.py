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


class DumbbellModel(ClickDiscModel):
    """:class:`ClickDiscModel` that calls two touching discs foreground at every click.

    Discs of radius 15 and 12 on the 128 grid, centres (60, 40) and (60, 66): one
    region with a waist about 10 pixels wide (a nucleus and the neighbour a mask
    leaked into). ``dumbbell()`` gives the two discs.
    """

    @staticmethod
    def dumbbell(size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        rr, cc = np.ogrid[:size, :size]
        left = (rr - 60) ** 2 + (cc - 40) ** 2 <= 15**2
        right = (rr - 60) ** 2 + (cc - 66) ** 2 <= 12**2
        return left, right

    def decode(self, features, ref, boundary_rule=None, dlu_rule="threshold"):
        logits = super().decode(features, ref, boundary_rule, dlu_rule)
        left, right = self.dumbbell(logits.shape[-1])
        logits[0, 0][torch.from_numpy(left | right)] = 10.0
        return logits


class GrowingModel(ClickDiscModel):
    """:class:`ClickDiscModel` whose foreground reaches ``grow`` grid pixels further, plus a blob.

    Each decode grows what the reference map calls foreground by a square of half-width
    ``grow`` (a mask fed back comes back larger) and calls an 8 x 8 block at the grid's
    bottom-right corner foreground, away from any click. ``refs`` records the
    reference maps it was given.
    """

    def __init__(self, image_size: int = 128, grow: int = 2):
        super().__init__(image_size)
        self.grow = grow
        self.refs = []

    def decode(self, features, ref, boundary_rule=None, dlu_rule="threshold"):
        self.refs.append(ref.clone())
        logits = super().decode(features, ref, boundary_rule, dlu_rule)
        side = 2 * self.grow + 1
        logits = torch.nn.functional.max_pool2d(logits, side, stride=1, padding=self.grow)
        logits[..., -8:, -8:] = 10.0
        return logits


class EmbeddingModel(ClickDiscModel):
    """:class:`ClickDiscModel` whose features carry an ``embedding`` (as the real model's do)."""

    def encode(self, image):
        from types import SimpleNamespace

        super().encode(image)
        return SimpleNamespace(embedding=torch.zeros(1, 1, 1, 1))


class SamHeadStub(torch.nn.Module):
    """Stands in for ``SamMaskHead``: calls a fixed box of the network input foreground.

    ``box`` (top, bottom, left, right) in pixels of the ``image_size`` input; the
    low-res answer has side ``image_size // 4`` (SAM's: 256 for 1024), its logits
    +-10 plus 0.001 x the call's number (so that answers can be told apart).
    ``first_boxes`` and ``first_scores``: the candidates (boxes as ``box``) and their
    predicted IoUs when there is no mask prompt (default: ``box`` alone, score 1).
    ``calls`` records (points, labels, mask_input) of each call.
    """

    def __init__(self, image_size: int = 128, box=(16, 64, 32, 96), first_boxes=None, first_scores=None):
        super().__init__()
        self.input_size = (image_size, image_size)
        self.low_side = image_size // 4
        self.box = box
        self.first_boxes = [box] if first_boxes is None else list(first_boxes)
        self.first_scores = [1.0] * len(self.first_boxes) if first_scores is None else list(first_scores)
        self.calls = []

    def mask_prompt(self, mask):
        share = torch.nn.functional.adaptive_avg_pool2d(mask.float(), self.low_side)
        return (2.0 * share - 1.0) * 8.0

    def candidates(self, embedding, points, labels, mask_input=None, multimask=None):
        self.calls.append((points.clone(), labels.clone(), None if mask_input is None else mask_input.clone()))
        boxes, scores = (self.first_boxes, self.first_scores) if mask_input is None else ([self.box], [1.0])
        low = torch.full((1, len(boxes), self.low_side, self.low_side), -10.0)
        for i, box in enumerate(boxes):
            top, bottom, left, right = (v // 4 for v in box)
            low[:, i, top:bottom, left:right] = 10.0
        return low + 0.001 * len(self.calls), torch.tensor([scores])

    def forward(self, embedding, points, labels, mask_input=None, multimask=None):
        low, scores = self.candidates(embedding, points, labels, mask_input, multimask)
        best = int(scores[0].argmax())
        return low[:, best : best + 1], scores
