"""Train the photograph probe: grey photographs vs grey microscopy, on the image embedding.

    python benchmarks/train_photograph_probe.py [--data-root ../shared/data] [--tune /tmp/tune]
        [--cache /tmp/probe_embeddings.npz] [--out src/napari_inter2former/weights]

Photographs: every 4th of the ``train/coco_mval`` images (one photograph each), made grey
(luminance), those of the tuning sets ``coco25`` / ``coco100`` held out. Microscopy: 10
planes of each ``train/plantseg`` volume, the ``train/bian`` images and 60 generated
images (``synthetic_image(seed, kind=nuclei | cells, size_range=(128, 512))``, seeds
0-59), all stretched between their 1st and 99.8th percentiles as the evaluation does.
Held out as well: the generated tuning sets ``nucs``, ``nuc256`` and ``nucbig``
(``benchmarks/make_tuning_sets.py``; seeds outside the generator's training range).
Features: :func:`~napari_inter2former.model.photograph_probe.embedding_statistics` of
the TinyViT embedding; a logistic regression (L2 0.01, L-BFGS) on the standardised
features. Writes ``photograph_probe.safetensors`` and its ``weights.json`` entry, and
prints the held-out figures. Encoding the ~300 images takes about 20 min (about 4 s per
image on one core of the 2-core development machine).
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
from napari_inter2former.training.synthetic import synthetic_image
from napari_inter2former.transforms import to_rgb_uint8

L2 = 1e-2


def grey_photograph(rgb: np.ndarray) -> np.ndarray:
    """A colour photograph's luminance, copied to three channels."""
    if rgb.ndim == 2:
        return to_rgb_uint8(rgb)
    luminance = rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return to_rgb_uint8(np.clip(np.round(luminance), 0, 255).astype(np.uint8))


def microscopy(image: np.ndarray) -> np.ndarray:
    return to_rgb_uint8(normalize_intensity(image))


def collect(data_root: Path, tune: Path):
    """(name, rgb, is_photograph, held_out) of every image, lazily."""
    held = {p.name for s in ("coco25", "coco100") for p in (tune / s / "images").glob("*")}
    files = sorted(glob.glob(str(data_root / "train" / "coco_mval" / "images" / "*")))
    for path in files[::4]:
        name = Path(path).name
        yield name, lambda p=path: grey_photograph(read_array(p)), 1, name in held
    for path in sorted((data_root / "train" / "plantseg" / "images").glob("*.tif")):
        volume = tifffile.imread(path)
        for z in range(0, volume.shape[0], max(1, volume.shape[0] // 10)):
            yield f"{path.name}:{z}", lambda v=volume, z=z: microscopy(v[z]), 0, False
    for path in sorted((data_root / "train" / "bian" / "images").glob("*.tif")):
        yield path.name, lambda p=path: microscopy(tifffile.imread(p)), 0, False
    for seed in range(60):
        kind = ("nuclei", "cells")[seed % 2]
        yield f"synthetic-{kind}-{seed}", lambda s=seed, k=kind: microscopy(
            synthetic_image(s, kind=k, size_range=(128, 512)).image
        ), 0, False
    for name in ("nucs", "nuc256", "nucbig"):
        for path in sorted((tune / name / "images").glob("*")):
            yield f"{name}/{path.name}", lambda p=path: microscopy(read_array(p)), 0, True


def embed_all(items, cache: Path | None):
    """Embedding statistics of every item (read from / added to ``cache``)."""
    known = {}
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        known = dict(zip(stored["name"].tolist(), stored["X"]))
    model = Predictor.from_pretrained(blend_sam=None, photograph_probe=None).model
    names, X, y, held = [], [], [], []
    for i, (name, load, label, held_out) in enumerate(items):
        if name not in known:
            rgb = load()
            with torch.inference_mode():
                embedding = model.encode(model.preprocess(rgb)).embedding
            known[name] = embedding_statistics(embedding, rgb.shape[:2]).numpy()
            print(f"{i:4d} {name}", flush=True)
            if cache is not None and i % 20 == 0:
                np.savez(cache, name=np.array(list(known)), X=np.array(list(known.values())))
        names.append(name)
        X.append(known[name])
        y.append(label)
        held.append(held_out)
    if cache is not None:
        np.savez(cache, name=np.array(list(known)), X=np.array(list(known.values())))
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
    parser.add_argument("--cache", type=Path, default=None, help="embedding statistics cache (.npz)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the probe here and record it (default: only report)")
    args = parser.parse_args()
    names, X, y, held = embed_all(list(collect(args.data_root, args.tune)), args.cache)
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
