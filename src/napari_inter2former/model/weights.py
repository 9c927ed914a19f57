"""Weight files: fp16 safetensors on disk, float32 tensors in memory, sha256-checked.

>>> sha = save_weights(model.state_dict(), "w.safetensors")      # doctest: +SKIP
>>> state = load_weights("w.safetensors", expected_sha256=sha)   # doctest: +SKIP

The shipped files live in ``napari_inter2former/weights/`` and are listed in its
``weights.json`` as ``{filename: {"sha256", "bytes", "source", "licence"}}``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "WEIGHTS_DIR",
    "WEIGHTS_JSON",
    "WeightFileError",
    "save_weights",
    "load_weights",
    "sha256_of",
    "weights_json",
    "record_weights_file",
    "load_packaged_weights",
    "average_state_dicts",
]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_JSON = WEIGHTS_DIR / "weights.json"
_ENTRY_FIELDS = ("sha256", "bytes", "source", "licence")


class WeightFileError(ValueError):
    """A weight file is missing, unreadable, or not the expected file."""


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(
    state_dict: Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    dtype: torch.dtype = torch.float16,
) -> str:
    """Write a state dict as safetensors, floating tensors cast to ``dtype``.

    Integer tensors (e.g. BatchNorm's ``num_batches_tracked``) are kept as they are.

    Parameters
    ----------
    state_dict : mapping of str to Tensor
    path : path
        Output file (parent folders are created).
    dtype : torch.dtype
        Storage type of floating tensors.

    Returns
    -------
    str
        The sha256 of the written file.
    """
    from safetensors.torch import save_file

    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating type, got {dtype}")
    tensors = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"state_dict entry {key!r} is not a tensor ({type(value).__name__})")
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": "pt"})
    path.chmod(0o644)  # safetensors creates the file owner-only
    return sha256_of(path)


def load_weights(
    path: str | os.PathLike, expected_sha256: str | None = None
) -> dict[str, torch.Tensor]:
    """Read a safetensors file into float32 CPU tensors (integer tensors unchanged).

    Parameters
    ----------
    path : path
    expected_sha256 : str, optional
        If given, the file's sha256 must equal it.

    Raises
    ------
    WeightFileError
        If the file does not exist, its sha256 differs, or it is not a safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f"weight file {path} does not exist")
    if expected_sha256 is not None:
        actual = sha256_of(path)
        if actual != expected_sha256.lower():
            raise WeightFileError(
                f"weight file {path} has sha256 {actual}, expected {expected_sha256}: "
                "the file is corrupt or is a different version"
            )
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightFileError(
            f"weight file {path} is not a readable safetensors file: {err}"
        ) from err
    return {k: (v.float() if v.is_floating_point() else v) for k, v in tensors.items()}


def weights_json(
    update: Mapping[str, Mapping[str, Any]] | None = None,
    json_path: str | os.PathLike | None = None,
) -> dict[str, dict[str, Any]]:
    """Read ``weights.json``, optionally merging and writing new entries first.

    Parameters
    ----------
    update : mapping, optional
        ``{filename: {"sha256", "bytes", "source", "licence"}}`` entries to add or replace.
    json_path : path, optional
        Default: the package's ``weights/weights.json``.

    Returns
    -------
    dict
        All entries (after the update), an empty dict if the file does not exist.
    """
    json_path = Path(json_path) if json_path is not None else WEIGHTS_JSON
    entries: dict[str, dict[str, Any]] = {}
    if json_path.is_file():
        entries = json.loads(json_path.read_text(encoding="utf-8"))
    if update:
        for name, entry in update.items():
            missing = [f for f in _ENTRY_FIELDS if f not in entry]
            if missing:
                raise ValueError(f"weights.json entry {name!r} lacks {', '.join(missing)}")
            entries[name] = {f: entry[f] for f in _ENTRY_FIELDS} | {
                k: v for k, v in entry.items() if k not in _ENTRY_FIELDS
            }
        entries = dict(sorted(entries.items()))
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    return entries


def record_weights_file(
    path: str | os.PathLike,
    *,
    source: str,
    licence: str,
    json_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Add (or refresh) a file's entry in ``weights.json``: sha256, size, source, licence."""
    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f"weight file {path} does not exist")
    entry = {
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "source": source,
        "licence": licence,
    }
    weights_json({path.name: entry}, json_path=json_path)
    return entry


def load_packaged_weights(filename: str) -> dict[str, torch.Tensor]:
    """Load a shipped weight file from ``weights/``, checked against its ``weights.json`` sha256."""
    entry = weights_json().get(filename)
    if entry is None:
        raise WeightFileError(f"{filename} is not listed in {WEIGHTS_JSON}")
    return load_weights(WEIGHTS_DIR / filename, expected_sha256=entry["sha256"])


def average_state_dicts(
    state_dicts: list[Mapping[str, torch.Tensor]], weights: list[float]
) -> dict[str, torch.Tensor]:
    """Weighted sum of state dicts with the same keys and shapes (a "model soup").

    Parameters
    ----------
    state_dicts : list of mapping of str to Tensor
        Weights of models fine-tuned from one another (one basin of the loss).
    weights : list of float
        One per state dict, summing to 1; a negative weight steps past the others along
        the line between them.

    Returns
    -------
    dict of str to Tensor
        ``sum(w_i * sd_i[k])`` in float32 for floating tensors; integer tensors are taken
        from the first state dict.
    """
    if not state_dicts or len(state_dicts) != len(weights):
        raise ValueError("give one weight per state dict")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"weights must sum to 1, not {sum(weights)}")
    keys = set(state_dicts[0])
    for sd in state_dicts[1:]:
        if set(sd) != keys:
            raise ValueError(f"the state dicts hold different keys: {sorted(keys ^ set(sd))[:5]}")
    averaged = {}
    for key, first in state_dicts[0].items():
        if any(sd[key].shape != first.shape for sd in state_dicts):
            raise ValueError(f"{key}: shapes differ")
        if first.is_floating_point():
            averaged[key] = sum(float(w) * sd[key].float() for w, sd in zip(weights, state_dicts))
        else:
            averaged[key] = first.clone()
    return averaged
