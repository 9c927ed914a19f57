"""MobileSAM as a click predictor, used the way SAM plugins use it (the baseline).

>>> predictor = MobileSAMPredictor.from_pretrained()   # doctest: +SKIP
>>> predictor.set_image(image)                          # doctest: +SKIP
>>> mask = predictor.add_click(120, 87)                 # doctest: +SKIP

Per image: RGB, longest side -> 1024 (bilinear, antialiased), SAM mean/std, zero padding
bottom/right, TinyViT embedding (cached per image). Per click: every click so far as a
point prompt ((x, y) in the resized frame), the previous low-res (256x256) logits as mask
input from the second click on, logits upsampled to the image and thresholded at 0.
The first click without a prior takes the best of the 3 multimask outputs by predicted
IoU (``first_click="best-score"``) or the single-mask output (``"single"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..constants import IMAGE_SIZE, MASK_THRESHOLD, PIXEL_MEAN, PIXEL_STD
from ..predictor import BasePredictor, Click, _FeatureCache, image_key
from ..transforms import InputGeometry

__all__ = ["MobileSAMPredictor", "FIRST_CLICK_MODES"]

FIRST_CLICK_MODES = ("best-score", "single")


class MobileSAMPredictor(BasePredictor):
    """MobileSAM (TinyViT encoder + SAM prompt encoder and mask decoder) on one 2-D image.

    Parameters
    ----------
    image_encoder : TinyViT
    mask_head : SamMaskHead
        MobileSAM's image encoder, and its prompt encoder + mask decoder (see
        :meth:`from_pretrained`).
    first_click : {"best-score", "single"}
        How the first click (without a prior mask) picks its mask: the multimask
        output with the highest predicted IoU, or the single-mask output.
    cache_size : int
        How many images' embeddings to keep.
    num_threads : int, optional
        Cap on torch's intra-op threads.
    model_id : str
        Identity used in the embedding cache key.
    """

    def __init__(
        self,
        image_encoder,
        mask_head,
        *,
        first_click: str = "best-score",
        cache_size: int = 8,
        num_threads: int | None = None,
        model_id: str = "mobilesam",
    ) -> None:
        super().__init__()
        import torch

        if first_click not in FIRST_CLICK_MODES:
            raise ValueError(f"first_click must be one of {FIRST_CLICK_MODES}, got {first_click!r}")
        if num_threads is not None:
            torch.set_num_threads(max(1, int(num_threads)))
        self.image_encoder = image_encoder.eval()
        self.mask_head = mask_head.eval()
        self.first_click = first_click
        self.model_id = model_id
        self.image_size = getattr(image_encoder, "img_size", IMAGE_SIZE)
        self.cache = _FeatureCache(cache_size)
        self._embedding = None
        self._geometry: InputGeometry | None = None
        self._low_res = None  # (1, 1, 256, 256) logits of the last prediction, or None
        self.last_scores = None  # predicted IoU(s) of the last click's mask(s)

    @classmethod
    def from_pretrained(cls, **kwargs) -> MobileSAMPredictor:
        """MobileSAM from the two packaged fp16 safetensors files (no network)."""
        from ..model.image_encoder import MOBILESAM_ENCODER_FILE, TinyViT, load_mobilesam_encoder
        from ..model.sam_decoder import SamMaskHead
        from ..model.weights import weights_json

        encoder = TinyViT()
        load_mobilesam_encoder(encoder)
        sha = weights_json()[MOBILESAM_ENCODER_FILE]["sha256"]
        kwargs.setdefault("model_id", f"mobilesam-{sha[:12]}")
        return cls(encoder, SamMaskHead.from_pretrained(), **kwargs)

    # ----- per image -----
    def preprocess(self, rgb: np.ndarray):
        """(M, N, 3) uint8 -> (1, 3, T, T) float32: resize longest side to T, normalise, pad."""
        import torch
        import torch.nn.functional as F

        g = InputGeometry(*rgb.shape[:2], size=self.image_size)
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        if g.resized_shape != (g.rows, g.cols):
            x = F.interpolate(
                x, size=g.resized_shape, mode="bilinear", align_corners=False, antialias=True
            )
        mean = torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(PIXEL_STD).view(1, 3, 1, 1)
        x = (x - mean) / std
        rr, rc = g.resized_shape
        return F.pad(x, (0, self.image_size - rc, 0, self.image_size - rr))  # zero = mean colour

    def _encode(self, rgb: np.ndarray) -> None:
        import torch

        key = image_key(rgb, self.model_id)
        embedding = self.cache.get(key)
        if embedding is None:
            with torch.inference_mode():
                embedding = self.image_encoder(self.preprocess(rgb))
            self.cache.put(key, embedding)
        self._embedding = embedding
        self._geometry = InputGeometry(*rgb.shape[:2], size=self.image_size)

    # ----- per object -----
    def _start(self, prior: np.ndarray | None) -> None:
        self._low_res = None if prior is None else self._prior_to_low_res(prior)
        self.last_scores = None

    def _predict(self, click: Click) -> np.ndarray:
        import torch

        g = self._geometry
        rr, rc = g.resized_shape
        # SAM point coordinates: (x, y) = (col, row) scaled to the resized frame
        coords = [(c.col * rc / g.cols, c.row * rr / g.rows) for c in self._clicks]
        labels = [int(c.positive) for c in self._clicks]
        points = (torch.tensor([coords], dtype=torch.float32), torch.tensor([labels]))
        multimask = self._low_res is None and self.first_click == "best-score"
        with torch.inference_mode():
            self._low_res, scores = self.mask_head(
                self._embedding, *points, mask_input=self._low_res, multimask=multimask
            )  # (1, 1, 256, 256), (1, 3 or 1)
        self.last_scores = scores[0].tolist()
        return self._low_res_to_mask(self._low_res)

    def _get_state(self) -> Any:
        return self._low_res

    def _set_state(self, state: Any) -> None:
        self._low_res = state

    # ----- geometry helpers -----
    def _low_res_to_mask(self, low_res) -> np.ndarray:
        """(1, 1, 256, 256) logits -> bool (M, N): upsample to T, crop the padding, resize."""
        import torch.nn.functional as F

        g = self._geometry
        rr, rc = g.resized_shape
        up = F.interpolate(
            low_res, size=(self.image_size,) * 2, mode="bilinear", align_corners=False
        )
        up = up[..., :rr, :rc]
        if (rr, rc) != (g.rows, g.cols):
            up = F.interpolate(up, size=(g.rows, g.cols), mode="bilinear", align_corners=False)
        return (up[0, 0] > MASK_THRESHOLD).cpu().numpy()

    def _prior_to_low_res(self, prior: np.ndarray):
        """Image-sized bool mask -> (1, 1, 256, 256) mask prompt (:meth:`SamMaskHead.mask_prompt`)."""
        import torch
        import torch.nn.functional as F

        g = self._geometry
        rr, rc = g.resized_shape
        m = torch.from_numpy(prior.astype(np.float32))[None, None]
        m = F.interpolate(m, size=(rr, rc), mode="bilinear", align_corners=False)
        m = F.pad(m, (0, self.image_size - rc, 0, self.image_size - rr))
        return self.mask_head.mask_prompt(m)
