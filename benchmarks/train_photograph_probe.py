"""Train the photograph probe: grey photographs vs grey microscopy, on the image embedding.

    python benchmarks/train_photograph_probe.py [--data-root ../shared/data] [--tune /tmp/tune]
        [--cache /tmp/probe_embeddings.npz] [--out src/napari_inter2former/weights]

Photographs: one image of each photograph of ``train/coco_mval`` (the first of the
objects cut from it), made grey (luminance); the photographs of the tuning sets
``coco25`` / ``coco100`` held out. Microscopy: ``--planes`` planes of each
``train/plantseg`` volume, the ``train/bian`` images and ``--synthetic`` generated images
(``synthetic_image(seed, kind=nuclei | cells, size_range=(128, 512))``; from seed 60 on,
every 4th inverted: dark objects on a bright ground, as in brightfield), all stretched
between their 1st and 99.8th percentiles as the evaluation does. Held out as well: the
generated tuning sets ``nucs``, ``nuc256`` and ``nucbig``
(``benchmarks/make_tuning_sets.py``; seeds outside the generator's training range).
Features: :func:`~napari_inter2former.model.photograph_probe.embedding_statistics` of
the TinyViT embedding; a logistic regression (L2 0.01, L-BFGS) on the standardised
features. Writes ``photograph_probe.safetensors`` and its ``weights.json`` entry, and
prints the held-out figures. Encoding the images takes about 3 s each on one core of the
2-core development machine; ``--shard 0/2`` and ``--shard 1/2`` encode two halves in
parallel into two caches, which a last run reads (``--cache A --cache B``).
"""

import argparse
import glob
from pathlib import Path

import numpy as np
import tifffile
import torch

from napari_inter2former.evaluation.datasets import normalize_intensity, read_array
from napari_inter2former.model.photograph_probe import (
    PHOTOGRAPH_THRESHOLD,
    PROBE_FILE,
    PhotographProbe,
    embedding_statistics,
)
from napari_inter2former.model.weights import record_weights_file, save_weights
from napari_inter2former.predictor import Predictor
from napari_inter2former.training.data import coco_image_id
from napari_inter2former.training.synthetic import synthetic_image
from napari_inter2former.transforms import to_rgb_uint8

L2 = 1e-2


def grey_photograph(rgb: np.ndarray) -> np.ndarray:
    """A colour photograph's luminance, copied to three channels."""
    if rgb.ndim == 2:
        return to_rgb_uint8(rgb)
    luminance = rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return to_rgb_uint8(np.clip(np.round(luminance), 0, 255).astype(np.uint8))


def microscopy(image: np.ndarray, invert: bool = False) -> np.ndarray:
    rgb = to_rgb_uint8(normalize_intensity(image))
    return 255 - rgb if invert else rgb


def collect(data_root: Path, tune: Path, planes: int = 10, synthetic: int = 60):
    """(name, rgb, is_photograph, held_out) of every image, lazily."""
    held = {coco_image_id(p.name) for s in ("coco25", "coco100") for p in (tune / s / "images").glob("*")}
    seen = set()
    for path in sorted(glob.glob(str(data_root / "train" / "coco_mval" / "images" / "*"))):
        name = Path(path).name
        if coco_image_id(name) in seen:
            continue
        seen.add(coco_image_id(name))
        yield name, lambda p=path: grey_photograph(read_array(p)), 1, coco_image_id(name) in held
    for path in sorted((data_root / "train" / "plantseg" / "images").glob("*.tif")):
        volume = tifffile.imread(path)
        for z in range(0, volume.shape[0], max(1, volume.shape[0] // planes)):
            yield f"{path.name}:{z}", lambda v=volume, z=z: microscopy(v[z]), 0, False
    for path in sorted((data_root / "train" / "bian" / "images").glob("*.tif")):
        yield path.name, lambda p=path: microscopy(tifffile.imread(p)), 0, False
    for seed in range(synthetic):
        kind = ("nuclei", "cells")[seed % 2]
        inverted = seed >= 60 and seed % 4 == 3  # dark objects on a bright ground, as in brightfield
        yield f"synthetic-{kind}-{seed}{'-inverted' * inverted}", lambda s=seed, k=kind, i=inverted: (
            microscopy(synthetic_image(s, kind=k, size_range=(128, 512)).image, invert=i)
        ), 0, False
    for name in ("nucs", "nuc256", "nucbig"):
        for path in sorted((tune / name / "images").glob("*")):
            yield f"{name}/{path.name}", lambda p=path: microscopy(read_array(p)), 0, True


def embed_all(items, caches: list[Path], shard: tuple[int, int] = (0, 1)):
    """Embedding statistics of every item of this ``shard`` (k, n: every nth from the kth).

    Read from the ``caches``; what is new is added to the first of them.
    """
    known = {}
    for cache in caches:
        if cache.is_file():
            stored = np.load(cache)
            known.update(zip(stored["name"].tolist(), stored["X"]))
    cache = caches[0] if caches else None

    def save():
        if cache is not None:
            np.savez(cache, name=np.array(list(known)), X=np.array(list(known.values())))

    model, new = None, 0
    names, X, y, held = [], [], [], []
    for i, (name, load, label, held_out) in enumerate(items):
        if i % shard[1] != shard[0]:
            continue
        if name not in known:
            if model is None:
                model = Predictor.from_pretrained(blend_sam=None, photograph_probe=None).model
            rgb = load()
            with torch.inference_mode():
                embedding = model.encode(model.preprocess(rgb)).embedding
            known[name] = embedding_statistics(embedding, rgb.shape[:2]).numpy()
            print(f"{i:4d} {name}", flush=True)
            new += 1
            if new % 20 == 0:
                save()
        names.append(name)
        X.append(known[name])
        y.append(label)
        held.append(held_out)
    save()
    return names, np.array(X), np.array(y), np.array(held)


def fit(X: np.ndarray, y: np.ndarray, l2: float = L2) -> PhotographProbe:
    """Logistic regression on standardised features, L2-penalised, by L-BFGS."""
    mean, scale = X.mean(0), X.std(0) + 1e-6
    Z = torch.tensor((X - mean) / scale, dtype=torch.float64)
    target = torch.tensor(y, dtype=torch.float64)
    weight = torch.zeros(Z.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=500)

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(Z @ weight + bias, target)
        loss = loss + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return PhotographProbe(mean, scale, weight.detach().numpy(), float(bias.detach()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--tune", type=Path, default=Path("/tmp/tune"),
                        help="the tuning sets (benchmarks/make_tuning_sets.py)")
    parser.add_argument("--cache", type=Path, action="append", default=[],
                        help="embedding statistics cache (.npz); repeat to read several, "
                        "new ones go to the first")
    parser.add_argument("--planes", type=int, default=10, help="planes of each plantseg volume")
    parser.add_argument("--synthetic", type=int, default=60, help="generated microscopy images")
    parser.add_argument("--shard", default="0/1",
                        help="k/n: only encode every nth image from the kth into the cache, then stop")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the probe here and record it (default: only report)")
    args = parser.parse_args()
    shard = tuple(int(v) for v in args.shard.split("/"))
    items = list(collect(args.data_root, args.tune, args.planes, args.synthetic))
    names, X, y, held = embed_all(items, args.cache, shard)
    if shard[1] > 1:
        return
    probe = fit(X[~held], y[~held])
    stats = torch.tensor(X, dtype=torch.float32)
    logits = ((stats - probe.mean) / probe.scale) @ probe.weight + probe.bias
    p = torch.sigmoid(logits).numpy()
    for part, mask in (("training", ~held), ("held out", held)):
        for label, what in ((1, "photographs"), (0, "microscopy")):
            sel = mask & (y == label)
            if sel.any():
                called = (p[sel] >= PHOTOGRAPH_THRESHOLD).sum()
                print(f"{part:9s} {what:12s} {sel.sum():4d} images, {called:4d} called photographs "
                      f"(p >= {PHOTOGRAPH_THRESHOLD}); p min {p[sel].min():.3f} max {p[sel].max():.3f}")
    for i in np.flatnonzero(held & ((p >= PHOTOGRAPH_THRESHOLD) != (y == 1))):
        print(f"  wrong: {names[i]} p={p[i]:.3f}")
    if args.out is not None:
        path = args.out / PROBE_FILE
        save_weights(probe.state_dict(), path, dtype=torch.float32)
        entry = record_weights_file(
            path,
            source="trained by napari-inter2former: benchmarks/train_photograph_probe.py "
            "(logistic regression on TinyViT embedding statistics; grey training photographs "
            "vs training and generated microscopy)",
            licence="BSD-3-Clause",
            json_path=args.out / "weights.json",
        )
        print(f"wrote {path} (sha256 {entry['sha256']})")


if __name__ == "__main__":
    main()
