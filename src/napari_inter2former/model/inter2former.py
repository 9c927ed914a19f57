"""The Inter2Former model: image encoder and edge net once per image, decoder per click.

>>> model = build_model("tiny")                                  # doctest: +SKIP
>>> feats = model.encode(model.preprocess(rgb))                  # doctest: +SKIP
>>> logits = model.decode(feats, ref)                            # doctest: +SKIP

See ``docs/design.md`` (model contract) for the shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..constants import DEFINITELY_FOREGROUND, PIXEL_MEAN, PIXEL_STD, TOKEN_STRIDE
from .decoder import Inter2FormerDecoder
from .common import grow_box
from .edge_net import EdgeNet
from .hybrid_attention import BOUNDARY_RULES
from .upsampling import DynamicLocalUpsampling

__all__ = ["DLU_RULES", "ImageFeatures", "Inter2Former", "click_tokens"]

DLU_RULES = ("threshold", "clicked")


@dataclass
class ImageFeatures:
    """Per-image features, cached between clicks.

    Attributes
    ----------
    embedding : Tensor of shape (B, C, T/16, T/16)
        Image encoder output.
    edges : tuple of 4 Tensors
        Edge maps coarsest first: (B, C, T/8, T/8), (B, C/4, T/4, T/4),
        (B, C/16, T/2, T/2), (B, C/64, T, T).
    """

    embedding: torch.Tensor
    edges: tuple[torch.Tensor, ...]

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> ImageFeatures:
        """A copy moved to ``device`` / cast to ``dtype``."""
        return ImageFeatures(
            self.embedding.to(device=device, dtype=dtype),
            tuple(e.to(device=device, dtype=dtype) for e in self.edges),
        )

    def __getitem__(self, index) -> ImageFeatures:
        """Select images of the batch (an int keeps the batch axis)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return ImageFeatures(self.embedding[index], tuple(e[index] for e in self.edges))


class Inter2Former(nn.Module):
    """Encoder, edge net, decoder (DPE + DHA/HMoE blocks) and upsampler (DLU).

    Parameters
    ----------
    image_encoder : nn.Module
        (B, 3, T, T) normalised image -> (B, C, T/16, T/16).
    edge_net : EdgeNet
        Same input -> 4 edge maps, coarsest first.
    decoder : Inter2FormerDecoder
    upsampler : DynamicLocalUpsampling
    image_size : int
        Network input side T.
    model_id : str
        Name + weight digest; used as a feature-cache key.
    boundary_rule : {'box', 'boundary', 'all'}
        Which tokens get full attention and routed experts (see
        :mod:`.hybrid_attention`); ``'box'`` matches the official code.
    """

    def __init__(
        self,
        image_encoder: nn.Module,
        edge_net: EdgeNet,
        decoder: Inter2FormerDecoder,
        upsampler: DynamicLocalUpsampling,
        image_size: int,
        model_id: str = "random",
        boundary_rule: str = "box",
    ) -> None:
        super().__init__()
        if image_size % (TOKEN_STRIDE * 2):
            raise ValueError(
                f"image_size must be a multiple of {TOKEN_STRIDE * 2}, got {image_size}"
            )
        self.image_encoder = image_encoder
        self.edge_net = edge_net
        self.decoder = decoder
        self.upsampler = upsampler
        self.image_size = image_size
        self.model_id = model_id
        self.boundary_rule = boundary_rule
        self.register_buffer(
            "pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False
        )

    @property
    def boundary_rule(self) -> str:
        return self._boundary_rule

    @boundary_rule.setter
    def boundary_rule(self, rule: str) -> None:
        if rule not in BOUNDARY_RULES:
            raise ValueError(
                f"boundary_rule must be one of {BOUNDARY_RULES}, got {rule!r}"
            )
        self._boundary_rule = rule

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        """RGB uint8 image -> normalised, resized, padded network input.

        Parameters
        ----------
        rgb : ndarray of shape (M, N, 3), uint8

        Returns
        -------
        Tensor of shape (1, 3, T, T), float32
            Longest side resized to T (bilinear, antialiased), normalised with the
            SAM mean/std, padded bottom/right with 0 (the mean colour). The resized
            size is that of :class:`napari_inter2former.transforms.InputGeometry`.
        """
        from ..transforms import InputGeometry

        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(
                f"expected an (M, N, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}"
            )
        if min(rgb.shape[:2]) == 0:
            raise ValueError(f"image is empty (shape {rgb.shape})")
        t = self.image_size
        rows, cols = InputGeometry(rgb.shape[0], rgb.shape[1], size=t).resized_shape
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device)
        x = x.permute(2, 0, 1)[None].float()  # (M, N, 3) -> (1, 3, M, N)
        if (rows, cols) != rgb.shape[:2]:
            x = F.interpolate(
                x,
                size=(rows, cols),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )
        x = (x - self.pixel_mean) / self.pixel_std
        return F.pad(x, (0, t - cols, 0, t - rows))  # (1, 3, T, T)

    def encode(self, x: torch.Tensor) -> ImageFeatures:
        """Per-image work: image embedding and edge maps.

        Parameters
        ----------
        x : Tensor of shape (B, 3, T, T), normalised (output of :meth:`preprocess`)
        """
        t = self.image_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, t, t):
            raise ValueError(
                f"expected input of shape (B, 3, {t}, {t}), got {tuple(x.shape)}"
            )
        return ImageFeatures(self.image_encoder(x), tuple(self.edge_net(x)))

    def _check(self, feats: ImageFeatures, ref: torch.Tensor) -> None:
        t = self.image_size
        if ref.ndim != 4 or tuple(ref.shape[1:]) != (1, t, t):
            raise ValueError(
                f"ref must have shape (B, 1, {t}, {t}), got {tuple(ref.shape)}"
            )
        if feats.embedding.shape[0] != ref.shape[0]:
            raise ValueError(
                f"features hold {feats.embedding.shape[0]} images but ref holds {ref.shape[0]} maps"
            )

    @torch.no_grad()
    def decode(
        self,
        feats: ImageFeatures,
        ref: torch.Tensor,
        *,
        boundary_rule: str | None = None,
        dense: bool = False,
        dlu_rule: str = "threshold",
        return_info: bool = False,
    ):
        """Per-click eval path for ONE image (batch size 1).

        Parameters
        ----------
        feats : ImageFeatures (batch 1)
        ref : Tensor of shape (1, 1, T, T), uint8 reference codes
        boundary_rule : {'box', 'boundary', 'all'}, optional
            Default: ``self.boundary_rule``.
        dense : bool
            Reference variant without the dynamic savings: whole-image DPE, full
            attention + routed experts for every token, whole-image upsampling.
        dlu_rule : {'threshold', 'clicked'}
            DLU upsamples the box of every token its localiser scores above the
            threshold (``'threshold'``, the paper's rule), or only of the groups of
            such tokens that hold a positive click (``'clicked'``: on an image of many
            similar nuclei the first rule's box is most of the image).
        return_info : bool
            Also return a dict with the DPE box, the boundary tokens and the DLU box.

        Returns
        -------
        logits : Tensor of shape (1, 1, T, T), float32
            OUTSIDE_LOGIT (-100) outside the DLU box.
        """
        self._check(feats, ref)
        if ref.shape[0] != 1:
            raise ValueError(
                f"decode takes one image (batch size 1), got {ref.shape[0]}"
            )
        if dlu_rule not in DLU_RULES:
            raise ValueError(f"dlu_rule must be one of {DLU_RULES}, got {dlu_rule!r}")
        rule = self.boundary_rule if boundary_rule is None else boundary_rule
        g, info = self.decoder(feats.embedding, ref, rule, dense=dense)
        seeds = click_tokens(ref[0, 0]) if dlu_rule == "clicked" else None
        logits, info["dlu_box"] = self.upsampler(g, feats.edges, dense=dense, seeds=seeds)
        return (logits, info) if return_info else logits

    def forward_train(
        self,
        feats: ImageFeatures,
        ref: torch.Tensor,
        *,
        boundary_rule: str | None = None,
    ) -> dict[str, torch.Tensor]:
        """Differentiable whole-image path over a batch (BSQ straight-through).

        Parameters
        ----------
        feats : ImageFeatures (batch B)
        ref : Tensor of shape (B, 1, T, T), reference codes

        Returns
        -------
        dict
            ``logits`` (B, 1, T, T), ``coarse_logits`` (B, 1, T/16, T/16),
            ``vq_loss`` scalar.
        """
        self._check(feats, ref)
        rule = self.boundary_rule if boundary_rule is None else boundary_rule
        g, vq_loss = self.decoder.forward_train(feats.embedding, ref, rule)
        logits, coarse = self.upsampler.forward_train(g, feats.edges)
        return {"logits": logits, "coarse_logits": coarse, "vq_loss": vq_loss}

    def forward_local(
        self,
        feats: ImageFeatures,
        ref: torch.Tensor,
        targets: list[tuple[int, int, int, int] | None],
        *,
        margin: int = 1,
        boundary_rule: str | None = None,
        dlu_rule: str = "threshold",
    ) -> dict:
        """Differentiable path that upsamples only where inference would, per image.

        The decoder runs as in :meth:`forward_train` but with the inference DPE;
        DLU then upsamples, for each image, the token box its localiser selects
        (as :meth:`decode` does) joined with the ``targets`` box and grown by
        ``margin`` tokens, with GroupNorm statistics over that crop as at inference.
        Outside the crop the inference output is OUTSIDE_LOGIT, so the crop holds
        every pixel the model can still get wrong beyond the localiser's own
        errors (trained by the coarse loss).

        Parameters
        ----------
        feats : ImageFeatures (batch B)
        ref : Tensor of shape (B, 1, T, T), reference codes
        targets : list of B token boxes (r0, r1, c0, c1) or None
            Boxes the crop must cover (e.g. the ground truth's).
        margin : int
            Tokens added on every side of the crop.
        dlu_rule : {'threshold', 'clicked'}
            The localiser's box rule, as in :meth:`decode`.

        Returns
        -------
        dict
            ``crops``: list of B Tensors (1, 1, 16 h_i, 16 w_i) of logits;
            ``boxes``: their token boxes (r0, r1, c0, c1); ``coarse_logits``
            (B, 1, T/16, T/16); ``vq_loss`` scalar.
        """
        self._check(feats, ref)
        rule = self.boundary_rule if boundary_rule is None else boundary_rule
        g, vq_loss = self.decoder.forward_train(
            feats.embedding, ref, rule, cropped_prompt=True
        )
        coarse = self.upsampler.localiser(g.detach())
        _, _, gh, gw = g.shape
        crops, boxes = [], []
        for i, target in enumerate(targets):
            seeds = click_tokens(ref[i, 0]) if dlu_rule == "clicked" else None
            r0, r1, c0, c1 = self.upsampler.roi(coarse[i, 0].detach(), seeds)
            if target is not None:
                r0, r1 = min(r0, target[0]), max(r1, target[1])
                c0, c1 = min(c0, target[2]), max(c1, target[3])
            box = grow_box((r0, r1, c0, c1), margin, (gh, gw))
            edges = tuple(e[i : i + 1] for e in feats.edges)
            crops.append(self.upsampler.upsample_box(g[i : i + 1], edges, box))
            boxes.append(box)
        return {
            "crops": crops,
            "boxes": boxes,
            "coarse_logits": coarse,
            "vq_loss": vq_loss,
        }

    def forward(
        self, feats: ImageFeatures, ref: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Same as :meth:`forward_train`."""
        return self.forward_train(feats, ref)


def click_tokens(ref: torch.Tensor) -> torch.Tensor:
    """(T, T) reference map -> (T/16, T/16) bool: the tokens a positive click disc touches."""
    t = ref.shape[-1] // TOKEN_STRIDE
    inside = ref == DEFINITELY_FOREGROUND
    return inside.reshape(t, TOKEN_STRIDE, t, TOKEN_STRIDE).any(3).any(1)
