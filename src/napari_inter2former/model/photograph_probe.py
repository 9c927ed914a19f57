"""Photograph or microscopy? A linear probe on the image encoder's embedding.

The predictor blends MobileSAM's mask decoder into natural photographs, where it
is strong, and leaves microscopy to the Inter2Former decoder. Colour photographs
are told by their colours (``predictor.is_colour_image``); grey ones need this
probe: a logistic regression on the per-channel mean and standard deviation of
the embedding over the image's own tokens, trained on grey copies of training
photographs and on training and generated microscopy
(``benchmarks/train_photograph_probe.py``).
"""

from __future__ import annotations

import math

import torch

PROBE_FILE = "photograph_probe.safetensors"
PHOTOGRAPH_THRESHOLD = 0.9  # probability above which an image counts as a photograph

__all__ = ["PROBE_FILE", "PhotographProbe", "embedding_statistics"]


def embedding_statistics(embedding: torch.Tensor, image_shape: tuple[int, int]) -> torch.Tensor:
    """Per-channel mean and standard deviation of an embedding over the image's tokens.

    Parameters
    ----------
    embedding : Tensor (1, C, h, w)
        The encoder's output for an image resized (longest side) to the network
        input and padded at the bottom and right.
    image_shape : (int, int)
        The image's (rows, cols), to leave out the tokens of the padding.

    Returns
    -------
    Tensor (2C,), float32
    """
    rows, cols = image_shape
    grid = embedding.shape[-1]
    scale = grid / max(rows, cols)
    tokens = embedding[0, :, : max(1, math.ceil(rows * scale)), : max(1, math.ceil(cols * scale))]
    tokens = tokens.float().flatten(1)
    return torch.cat([tokens.mean(1), tokens.std(1)])


class PhotographProbe:
    """Logistic regression: the probability that an image is a natural photograph.

    Parameters
    ----------
    mean, scale : Tensor (2C,)
        Standardisation of :func:`embedding_statistics`.
    weight : Tensor (2C,)
    bias : float
    threshold : float
        Probability from which :meth:`is_photograph` says yes.
    """

    def __init__(self, mean, scale, weight, bias: float, threshold: float = PHOTOGRAPH_THRESHOLD):
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.scale = torch.as_tensor(scale, dtype=torch.float32)
        self.weight = torch.as_tensor(weight, dtype=torch.float32)
        self.bias = float(bias)
        self.threshold = float(threshold)
        if not self.mean.shape == self.scale.shape == self.weight.shape:
            raise ValueError("mean, scale and weight must have one shape")

    @classmethod
    def from_pretrained(cls, threshold: float = PHOTOGRAPH_THRESHOLD) -> "PhotographProbe":
        """The shipped probe (``weights/photograph_probe.safetensors``, sha256-checked)."""
        from .weights import load_packaged_weights

        state = load_packaged_weights(PROBE_FILE)
        return cls(state["mean"], state["scale"], state["weight"], float(state["bias"]), threshold)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            "mean": self.mean,
            "scale": self.scale,
            "weight": self.weight,
            "bias": torch.tensor([self.bias]),
        }

    def probability(self, embedding: torch.Tensor, image_shape: tuple[int, int]) -> float:
        """Probability that the image of ``embedding`` (1, C, h, w) is a photograph."""
        stats = embedding_statistics(embedding, image_shape)
        if stats.shape != self.mean.shape:
            raise ValueError(f"the probe takes {self.mean.numel() // 2} channels, got {embedding.shape[1]}")
        logit = ((stats - self.mean) / self.scale) @ self.weight + self.bias
        return float(torch.sigmoid(logit))

    def is_photograph(self, embedding: torch.Tensor, image_shape: tuple[int, int]) -> bool:
        return self.probability(embedding, image_shape) >= self.threshold
