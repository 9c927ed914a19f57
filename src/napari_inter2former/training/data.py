"""Training data: real and synthetic images, augmented views, and the embedding cache.

Pipeline
--------
1. *Raw views*: 2-D RGB uint8 images with instance labels. Real sets come from
   ``<data_root>/train/<set>`` (every slice of a 3-D stack is a 2-D image); each
   view is a random augmentation (flips, 90-degree turns, zoom in by cropping or
   zoom out by mirror tiling, gamma). Synthetic views come from
   :mod:`.synthetic` (generated in worker processes).
2. *Cache*: every view is resized to the network grid once
   (``model.preprocess``), its labels are resized the same way (nearest pixel
   centre), and the frozen encoder's embedding is computed in batches. A
   training step then only runs the edge net, the decoder and the upsampler.
   The cache keeps the normalised image (the edge net's input) and the
   embedding in float16; it can be saved and reloaded (resuming a CPU run).
3. *Objects*: each cached view keeps the ids of its objects larger than
   ``min_object_area`` network pixels; a training sample is one (view, object).

Held-out validation data never overlaps the training views: the last
``val_fraction`` of the planes of each stack (and of the rows of 2-D label
images), a hashed ``val_fraction`` of the COCO image ids, and synthetic images
from a separate seed range. ``data/eval`` is never read.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..transforms import to_rgb_uint8
from .synthetic import synthetic_image

__all__ = [
    "SOURCE_WEIGHTS",
    "VAL_SEED_OFFSET",
    "FeaturePool",
    "RawView",
    "build_pool",
    "coco_image_id",
    "iter_synthetic_views",
    "load_real_set",
    "random_view",
    "synthetic_view",
]

VAL_SEED_OFFSET = 1_000_000  # synthetic validation images use seeds from here on
SOURCE_WEIGHTS = {"synthetic": 0.45, "plantseg": 0.2, "coco_mval": 0.25, "bian": 0.1}
MICROSCOPY_ZOOM = (
    0.35,
    2.5,
)  # zoom range of real microscopy views (< 1: mirror tiling)
NATURAL_ZOOM = (1.0, 1.6)  # zoom range of natural-image views (crops around the object)


@dataclass
class RawView:
    """One 2-D training image before resizing to the network grid."""

    rgb: np.ndarray  # (M, N, 3) uint8
    labels: np.ndarray  # (M, N) int32, 0 = background
    source: str
    name: str = ""


# ----------------------------------------------------------------------------- real data
def coco_image_id(name: str) -> str:
    """The COCO photograph a ``coco_mval`` file (``<object>_<image id>.<ext>``) comes from.

    Several objects, each its own file, share one photograph.
    """
    return Path(name).stem.rsplit("_", 1)[-1]


def _coco_is_val(stem: str, val_fraction: float) -> bool:
    return (zlib.crc32(coco_image_id(stem).encode()) % 1000) < val_fraction * 1000


def load_real_set(
    data_root: str | Path, name: str, split: str, val_fraction: float = 0.1
) -> list[RawView]:
    """All 2-D images of one training set, for the 'train' or 'val' split.

    Parameters
    ----------
    data_root : path
        Folder holding ``train/<name>/{images,masks}``.
    name : str
        Set name, e.g. 'coco_mval', 'plantseg', 'bian'.
    split : {'train', 'val'}
    val_fraction : float
        Share held out for validation.

    Returns
    -------
    list of RawView
        Volumes give one view per plane (near-isotropic stacks also per row and
        column slice, cut from the training planes only).
    """
    from ..evaluation.datasets import list_pairs, load_sample

    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    root = Path(data_root) / "train" / name
    if not root.is_dir():
        raise ValueError(f"training set folder {root} does not exist")
    views: list[RawView] = []
    for stem, image_path, mask_path in list_pairs(root):
        if name == "coco_mval" and _coco_is_val(stem, val_fraction) != (split == "val"):
            continue
        sample = load_sample(stem, image_path, mask_path)
        image, labels = sample.image, sample.labels
        if sample.is_volume:
            planes = labels.shape[0]
            cut = int(round(planes * (1.0 - val_fraction)))
            if split == "val":
                chosen = [
                    (image[z], labels[z], f"{stem}[z={z}]")
                    for z in range(min(cut + 2, planes), planes)
                ]
            else:
                chosen = [(image[z], labels[z], f"{stem}[z={z}]") for z in range(cut)]
                if planes >= 0.5 * max(
                    labels.shape[1:]
                ):  # near-isotropic: side views too
                    sub_img, sub_lab = image[:cut], labels[:cut]
                    chosen += [
                        (sub_img[:, r], sub_lab[:, r], f"{stem}[y={r}]")
                        for r in range(labels.shape[1])
                    ]
                    chosen += [
                        (sub_img[:, :, c], sub_lab[:, :, c], f"{stem}[x={c}]")
                        for c in range(labels.shape[2])
                    ]
        elif labels.max() > 1:  # 2-D instance image: split by rows
            cut = int(round(labels.shape[0] * (1.0 - val_fraction)))
            rows = slice(cut, None) if split == "val" else slice(0, cut)
            chosen = [(image[rows], labels[rows], stem)]
        else:
            chosen = [(image, labels, stem)]
        for img, lab, label in chosen:
            if lab.max() == 0:
                continue
            rgb = img if img.ndim == 3 else to_rgb_uint8(img)
            views.append(
                RawView(np.ascontiguousarray(rgb), lab.astype(np.int32), name, label)
            )
    return views


def _relabel(labels: np.ndarray) -> np.ndarray:
    present = np.unique(labels)
    present = present[present > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[present] = np.arange(1, present.size + 1, dtype=np.int32)
    return lut[labels]


def _mirror_tile(
    rgb: np.ndarray, labels: np.ndarray, rows: int, cols: int, rng: np.random.Generator
):
    """Mirror-pad to (rows, cols) at a random offset; every mirrored copy gets new ids."""
    m, n = labels.shape
    top, left = (
        int(rng.integers(0, max(rows - m, 0) + 1)),
        int(rng.integers(0, max(cols - n, 0) + 1)),
    )
    pad = ((top, rows - m - top), (left, cols - n - left))
    out_rgb = np.pad(rgb, pad + ((0, 0),), mode="symmetric")
    out_lab = np.pad(labels, pad, mode="symmetric")
    tile_r = np.floor_divide(
        np.arange(rows) - top, m
    )  # which mirrored copy each row is in
    tile_c = np.floor_divide(np.arange(cols) - left, n)
    tile = (tile_r - tile_r.min())[:, None] * (tile_c.max() - tile_c.min() + 1) + (
        tile_c - tile_c.min()
    )[None, :]
    out_lab = np.where(out_lab > 0, out_lab + tile * (int(labels.max()) + 1), 0)
    return out_rgb, _relabel(out_lab)


def random_view(
    view: RawView, rng: np.random.Generator, zoom: tuple[float, float] | None = None
) -> RawView:
    """A random augmentation of a view: flips, 90-degree turns, zoom, gamma.

    Zoom ``z > 1`` crops a window of 1/z of each side (natural images: around
    the object), ``z < 1`` mirror-tiles the image to 1/z of each side, so that
    objects appear smaller on the network grid.
    """
    natural = view.source == "coco_mval"
    if zoom is None:
        zoom = NATURAL_ZOOM if natural else MICROSCOPY_ZOOM
    rgb, labels = view.rgb, view.labels
    z = float(np.exp(rng.uniform(np.log(zoom[0]), np.log(zoom[1]))))
    m, n = labels.shape
    rows, cols = max(8, int(round(m / z))), max(8, int(round(n / z)))
    if z < 1:
        rgb, labels = _mirror_tile(rgb, labels, rows, cols, rng)
    elif rows < m or cols < n:
        rows, cols = min(rows, m), min(cols, n)
        if natural:  # keep the object's centre inside the crop
            rr, cc = np.nonzero(labels)
            cy, cx = int(rr.mean()), int(cc.mean())
            r0 = int(rng.integers(max(0, cy - rows + 1), min(cy, m - rows) + 1))
            c0 = int(rng.integers(max(0, cx - cols + 1), min(cx, n - cols) + 1))
        else:
            r0, c0 = (
                int(rng.integers(0, m - rows + 1)),
                int(rng.integers(0, n - cols + 1)),
            )
        rgb, labels = (
            rgb[r0 : r0 + rows, c0 : c0 + cols],
            _relabel(labels[r0 : r0 + rows, c0 : c0 + cols]),
        )
    if rng.random() < 0.5:
        rgb, labels = rgb[:, ::-1], labels[:, ::-1]
    if not natural:
        turns = int(rng.integers(0, 4))
        rgb, labels = np.rot90(rgb, turns), np.rot90(labels, turns)
        gamma = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4))))
        lut = np.clip(
            np.round(255.0 * (np.arange(256) / 255.0) ** gamma), 0, 255
        ).astype(np.uint8)
        rgb = lut[rgb]
    return RawView(
        np.ascontiguousarray(rgb), np.ascontiguousarray(labels), view.source, view.name
    )


# ----------------------------------------------------------------------------- synthetic
def synthetic_view(
    seed: int, size_range: tuple[int, int] = (128, 1024), **options
) -> RawView:
    """One synthetic image as a view (grey -> RGB with the plugin's contrast stretch).

    ``options``: further keywords of :func:`synthetic_image` (e.g. ``dim_brightness``).
    """
    sample = synthetic_image(int(seed), size_range=tuple(size_range), **options)
    return RawView(
        to_rgb_uint8(sample.image), sample.labels, "synthetic", f"synthetic-{seed}"
    )


def _synthetic_job(args) -> RawView:
    seed, size_range, options = args
    return synthetic_view(seed, size_range, **options)  # numpy/scipy only: safe in a forked worker


def iter_synthetic_views(
    seeds: Sequence[int], size_range: tuple[int, int], num_workers: int, **options
) -> Iterator[RawView]:
    """Synthetic views in seed order, generated by ``num_workers`` processes (1: inline).

    ``options``: further keywords of :func:`synthetic_image`, the same for every view.
    """
    jobs = [(int(s), tuple(size_range), options) for s in seeds]
    if num_workers <= 1 or len(jobs) < 4:
        for job in jobs:
            yield _synthetic_job(job)
        return
    import multiprocessing as mp

    ctx = (
        mp.get_context("fork")
        if "fork" in mp.get_all_start_methods()
        else mp.get_context()
    )
    with ctx.Pool(num_workers) as pool:
        yield from pool.imap(_synthetic_job, jobs, chunksize=2)


# ----------------------------------------------------------------------------- cache
@dataclass
class FeaturePool:
    """Cached network inputs, embeddings and labels of many views.

    Attributes (one entry per view)
    ---------------------------------
    images : list of Tensor (3, T, T), float16 -- normalised, padded image
    embeddings : list of Tensor (C, T/16, T/16), float16 -- frozen encoder output
    labels : list of Tensor (T, T), int16/int32 -- instance labels on the grid
    valid : list of (rows, cols) -- the image part of the grid (the rest is padding)
    objects : list of ndarray -- ids of the objects usable for training
    sources : list of str
    """

    images: list = field(default_factory=list)
    embeddings: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    valid: list = field(default_factory=list)
    objects: list = field(default_factory=list)
    sources: list = field(default_factory=list)
    names: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def source_indices(self) -> dict[str, np.ndarray]:
        out: dict[str, list[int]] = {}
        for i, (s, objs) in enumerate(zip(self.sources, self.objects)):
            if len(objs):
                out.setdefault(s, []).append(i)
        return {s: np.asarray(v) for s, v in out.items()}

    def sample(
        self,
        rng: np.random.Generator,
        batch_size: int,
        weights: dict[str, float] | None = None,
    ):
        """Draw (view index, object id) pairs: a source by weight, a view, an object."""
        groups = self.source_indices()
        if not groups:
            raise ValueError("the feature pool holds no usable object")
        names = sorted(groups)
        if weights is None:
            w = np.array([SOURCE_WEIGHTS.get(n, 0.1) for n in names], float)
        else:
            unknown = sorted(set(weights) - set(SOURCE_WEIGHTS))
            if unknown or any(not v >= 0 for v in weights.values()):
                raise ValueError(
                    f"source weights must be >= 0 for sources in {sorted(SOURCE_WEIGHTS)}, "
                    f"got {weights}"
                )
            w = np.array([weights.get(n, 0.0) for n in names], float)
            if w.sum() <= 0:
                raise ValueError(f"source weights {weights} give no weight to {names}")
        w = w / w.sum()
        picks = []
        for _ in range(batch_size):
            group = groups[names[int(rng.choice(len(names), p=w))]]
            index = int(group[rng.integers(group.size)])
            objs = self.objects[index]
            picks.append((index, int(objs[rng.integers(len(objs))])))
        return picks

    def batch(self, picks: Sequence[tuple[int, int]], device: torch.device | str):
        """Tensors of a batch: image (B,3,T,T) float, embedding (B,C,t,t) float,
        gt (B,1,T,T) bool, valid (B,1,T,T) bool."""
        idx = [i for i, _ in picks]
        image = (
            torch.stack([self.images[i] for i in idx])
            .to(device, non_blocking=True)
            .float()
        )
        emb = (
            torch.stack([self.embeddings[i] for i in idx])
            .to(device, non_blocking=True)
            .float()
        )
        lab = torch.stack([self.labels[i] for i in idx]).to(device, non_blocking=True)
        ids = torch.tensor([o for _, o in picks], device=device).view(-1, 1, 1)
        gt = (lab == ids)[:, None]
        t = image.shape[-1]
        valid = torch.zeros(len(picks), 1, t, t, dtype=torch.bool, device=device)
        for b, i in enumerate(idx):
            rows, cols = self.valid[i]
            valid[b, :, :rows, :cols] = True
        return image, emb, gt, valid

    def instance_labels(self, picks: Sequence[tuple[int, int]], device) -> torch.Tensor:
        """Instance labels (B,1,T,T) of the picked views (every object, not just the picked one)."""
        return torch.stack([self.labels[i] for i, _ in picks])[:, None].to(device)

    def state(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "images",
                "embeddings",
                "labels",
                "valid",
                "objects",
                "sources",
                "names",
            )
        }

    def save(self, path: str | Path) -> None:
        state = self.state()
        state["images"] = [t.cpu() for t in self.images]
        state["embeddings"] = [t.cpu() for t in self.embeddings]
        state["labels"] = [t.cpu() for t in self.labels]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, str(path))

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> FeaturePool:
        state = torch.load(str(path), map_location=device, weights_only=False)
        return cls(**state)


def _labels_to_grid(
    labels: np.ndarray, size: int, device
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Nearest (pixel-centre) resize of labels onto the padded (size, size) grid."""
    from ..transforms import InputGeometry

    rows, cols = InputGeometry(
        labels.shape[0], labels.shape[1], size=size
    ).resized_shape
    lab = torch.from_numpy(labels.astype(np.int32)).to(device)[None, None].float()
    lab = F.interpolate(lab, size=(rows, cols), mode="nearest-exact")[0, 0]
    grid = torch.zeros(size, size, dtype=torch.int32, device=device)
    grid[:rows, :cols] = lab.round().int()
    return grid, (rows, cols)


@torch.no_grad()
def build_pool(
    model,
    views: Iterable[RawView],
    *,
    batch_size: int = 8,
    min_object_area: int = 64,
    storage_device: torch.device | str = "cpu",
    deadline: float | None = None,
    limit: int | None = None,
    pool: FeaturePool | None = None,
    progress=None,
) -> FeaturePool:
    """Resize views to the network grid and cache the frozen encoder's embeddings.

    Parameters
    ----------
    model : Inter2Former
        Its ``image_encoder`` runs here, batched, without gradients, in float32 as
        at inference (also when the training step runs under bf16 autocast).
    views : iterable of RawView
    batch_size : int
        Encoder batch size.
    min_object_area : int
        Objects smaller than this (network pixels) are not used.
    storage_device : device
        Where the cached tensors live (the GPU when it has room).
    deadline : float, optional
        ``time.monotonic()`` value after which no new view is taken.
    limit : int, optional
        Stop after this many views.
    pool : FeaturePool, optional
        Append to this pool.
    progress : callable, optional
        Called with the number of views added after each batch.
    """
    pool = FeaturePool() if pool is None else pool
    device = model.device
    size = model.image_size
    pending: list[tuple[torch.Tensor, torch.Tensor, tuple[int, int], str, str]] = []
    added = 0

    def flush() -> None:
        nonlocal added
        if not pending:
            return
        x = torch.cat([p[0] for p in pending])
        emb = model.image_encoder(x)
        for (xi, lab, valid, source, name), e in zip(pending, emb):
            areas = torch.bincount(lab.flatten().long())
            objs = torch.nonzero(areas >= min_object_area).flatten()
            objs = objs[objs > 0].cpu().numpy()
            pool.images.append(xi[0].to(storage_device, torch.float16))
            pool.embeddings.append(e.to(storage_device, torch.float16))
            pool.labels.append(
                lab.to(
                    storage_device,
                    torch.int16 if int(lab.max()) < 32767 else torch.int32,
                )
            )
            pool.valid.append(valid)
            pool.objects.append(objs)
            pool.sources.append(source)
            pool.names.append(name)
        added += len(pending)
        pending.clear()
        if progress is not None:
            progress(added)

    for view in views:
        if deadline is not None and time.monotonic() > deadline:
            break
        if limit is not None and added + len(pending) >= limit:
            break
        x = model.preprocess(view.rgb)
        lab, valid = _labels_to_grid(view.labels, size, device)
        pending.append((x, lab, valid, view.source, view.name))
        if len(pending) >= batch_size:
            flush()
    flush()
    return pool


def plan_views(
    real: dict[str, list[RawView]],
    counts: dict[str, int],
    rng: np.random.Generator,
) -> Iterator[RawView]:
    """Random augmented views of the real sets, ``counts[name]`` per set, interleaved."""
    queue = []
    for name, views in real.items():
        if views:
            picks = rng.integers(0, len(views), counts.get(name, 0))
            queue += [(name, int(i)) for i in picks]
    order = rng.permutation(len(queue)) if queue else []
    for j in order:
        name, i = queue[int(j)]
        yield random_view(real[name][i], np.random.default_rng(rng.integers(2**63)))


def interleave(*iterables: Iterable[RawView]) -> Iterator[RawView]:
    """Round-robin over several view streams until all are exhausted."""
    iterators = [iter(it) for it in iterables]
    while iterators:
        alive = []
        for it in iterators:
            try:
                yield next(it)
                alive.append(it)
            except StopIteration:
                pass
        iterators = alive
