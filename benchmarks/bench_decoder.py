"""Per-click decoder and per-image encoder timings on this machine (random weights).

    python benchmarks/bench_decoder.py                 # everything, torch threads = 2
    python benchmarks/bench_decoder.py --skip-encoder --skip-2048

Rows:
- encoder: TinyViT on one 1024 x 1024 image (median of ``--repeats``);
- edge net: slim default vs the official CannyNet layout at T = 1024;
- per click: ``model.decode`` (DPE + DHA + HMoE + DLU, eval path) for a small
  (nucleus-sized, 40 px) and a large (400 px) object, for the boundary rules
  ``all`` (the predictor's default), ``box`` and ``boundary``, against ``decode(..., dense=True)`` (whole-image DPE,
  full attention + routed experts for every token, whole-image upsampling),
  measured in the same run; also at 128 x 128 tokens (T = 2048: a random
  (1, 256, 128, 128) embedding and a 2048 reference map).

The reference map is the state before a second click: POSSIBLY_BACKGROUND
everywhere, the object (a disc) POSSIBLY_FOREGROUND, a positive click disc at its
centre. Random weights do not localise, so the DLU box is set to the object's
token box grown by one token (what a trained coarse localiser returns); the
dense variant always upsamples the whole image.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import torch

from napari_inter2former.constants import POSSIBLY_BACKGROUND, POSSIBLY_FOREGROUND
from napari_inter2former.model.build import CONFIGS, build_from_config
from napari_inter2former.model.edge_net import EdgeNet, count_parameters
from napari_inter2former.model.inter2former import ImageFeatures
from napari_inter2former.reference_map import paint_clicks


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def object_ref(
    size: int, diameter: int
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Second-click reference map of a disc object, and its token box grown by one token."""
    ref = torch.full((1, 1, size, size), POSSIBLY_BACKGROUND, dtype=torch.uint8)
    centre = size // 2 + 7  # not aligned with the token grid
    rr = torch.arange(size).view(-1, 1) - centre
    cc = torch.arange(size).view(1, -1) - centre
    ref[0, 0][rr * rr + cc * cc <= (diameter / 2) ** 2] = POSSIBLY_FOREGROUND
    paint_clicks(ref, [(centre, centre, True)])
    n = size // 16
    r = diameter / 2
    t0 = max(int((centre - r) // 16) - 1, 0)
    t1 = min(int((centre + r) // 16) + 2, n)
    return ref, (t0, t1, t0, t1)


def random_features(model, size: int, seed: int = 0) -> ImageFeatures:
    g = torch.Generator().manual_seed(seed)
    n = size // 16
    emb = torch.randn(1, 256, n, n, generator=g)
    edges = tuple(
        torch.randn(1, c, n * 2 ** (j + 1), n * 2 ** (j + 1), generator=g)
        for j, c in enumerate(model.upsampler.edge_channels)
    )
    return ImageFeatures(emb, edges)


def bench_clicks(
    model, size: int, objects: dict, repeats: int, dense_repeats: int
) -> list[dict]:
    feats = random_features(model, size)
    rows = []
    real_roi = model.upsampler.roi
    for name, diameter in objects.items():
        ref, dlu_box = object_ref(size, diameter)
        model.upsampler.roi = lambda coarse, box=dlu_box: box
        try:
            dense = median_ms(
                lambda ref=ref: model.decode(feats, ref, dense=True), dense_repeats
            )
            for rule in ("all", "box", "boundary"):
                _, info = model.decode(feats, ref, boundary_rule=rule, return_info=True)
                ms = median_ms(
                    lambda ref=ref, rule=rule: model.decode(
                        feats, ref, boundary_rule=rule
                    ),
                    repeats,
                )
                with torch.no_grad():
                    dec_ms = median_ms(
                        lambda ref=ref, rule=rule: model.decoder(
                            feats.embedding, ref, rule
                        ),
                        repeats,
                    )
                r0, r1, c0, c1 = info["box"]
                rows.append(
                    {"T": size, "object": f"{name} ({diameter} px)", "rule": rule,
                     "box_tokens": (r1 - r0) * (c1 - c0) // 256,
                     "boundary": int(info["boundary"].sum()), "decoder_ms": dec_ms,
                     "click_ms": ms, "dense_ms": dense, "ratio": dense / ms}
                )  # fmt: skip
        finally:
            model.upsampler.roi = real_roi
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--skip-encoder", action="store_true")
    parser.add_argument("--skip-2048", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip

    x = torch.randn(1, 3, 1024, 1024)
    config = dataclasses.replace(CONFIGS["default"], encoder="patch")
    model_1024 = build_from_config(
        config
    )  # built outside inference mode, like the predictor
    model_2048 = (
        None
        if args.skip_2048
        else build_from_config(dataclasses.replace(config, image_size=2048))
    )
    with torch.inference_mode():
        if not args.skip_encoder:
            try:
                from napari_inter2former.model.image_encoder import TinyViT

                enc = TinyViT(img_size=1024).eval()
                print(
                    f"encoder TinyViT 1024: {median_ms(lambda: enc(x), 3):.0f} ms (median of 3)"
                )
            except ImportError as err:  # pragma: no cover
                print(f"encoder: TinyViT unavailable ({err})")
        for label, widths, depth in (
            ("slim", (4, 8, 16, 32), 1),
            ("official", (4, 16, 64, 256), 4),
        ):
            net = EdgeNet((4, 16, 64, 256), widths, depth).eval()
            ms = median_ms(lambda net=net: net(x), 3)
            print(f"edge net {label:8s} widths {widths} depth {depth}: "
                  f"{count_parameters(net):>9,d} params, {ms:.0f} ms at T=1024")  # fmt: skip

        rows = bench_clicks(
            model_1024, 1024, {"small": 40, "large": 400}, args.repeats, 3
        )
        if model_2048 is not None:
            rows += bench_clicks(model_2048, 2048, {"small": 80, "large": 800}, 3, 2)

    header = (
        "T",
        "object",
        "rule",
        "box tok",
        "bnd tok",
        "decoder ms",
        "click ms",
        "dense ms",
        "dense/ours",
    )
    print("\n" + " | ".join(header))
    print(" | ".join("---" for _ in header))
    for r in rows:
        print(f"{r['T']} | {r['object']} | {r['rule']} | {r['box_tokens']} | {r['boundary']} | "
              f"{r['decoder_ms']:.1f} | {r['click_ms']:.1f} | {r['dense_ms']:.0f} | {r['ratio']:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
