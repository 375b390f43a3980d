"""Embed a set of photos with the real pipeline, in memory only (embeddings never go to disk)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import BadInput
from engine.pipeline import FacePipeline


@dataclass(frozen=True)
class EmbeddedSet:
    """`faces[i]` holds the embeddings of every face of `paths[i]`, largest first (as the API chooses).

    `vectors[i]` is the largest face's embedding, zero for an image with no face (flagged in `no_face`).
    """

    paths: list[Path]
    faces: list[np.ndarray]
    seconds_per_image: float

    @property
    def no_face(self) -> np.ndarray:
        return np.array([len(f) == 0 for f in self.faces], dtype=bool)

    @property
    def vectors(self) -> np.ndarray:
        dim = next((f.shape[1] for f in self.faces if len(f)), 1)
        return np.stack([f[0] if len(f) else np.zeros(dim, dtype=np.float32) for f in self.faces])

    def index(self) -> dict[Path, int]:
        return {path: i for i, path in enumerate(self.paths)}


def embed_paths(pipeline: FacePipeline, paths: list[Path], *, progress: bool = False) -> EmbeddedSet:
    faces: list[np.ndarray] = []
    started = time.perf_counter()
    for count, path in enumerate(paths, 1):
        try:
            faces.append(pipeline.embed_all(pipeline.decode(path.read_bytes())))
        except BadInput:
            faces.append(np.zeros((0, 1), dtype=np.float32))
        if progress and count % 500 == 0:
            print(f"  embedded {count}/{len(paths)}", flush=True)
    elapsed = time.perf_counter() - started
    return EmbeddedSet(paths=paths, faces=faces, seconds_per_image=elapsed / max(len(paths), 1))


def identity_of(path: Path) -> str:
    """LFW layout: a person's photos sit in a folder named after them."""
    return path.parent.name


def impostor_cosines(embedded: EmbeddedSet) -> np.ndarray:
    """Cosines of every pair of photos of different people (both with a face)."""
    keep = ~embedded.no_face
    vectors = embedded.vectors[keep]
    identities = np.array([identity_of(p) for p, k in zip(embedded.paths, keep, strict=True) if k])
    similarities = vectors @ vectors.T
    upper = np.triu(np.ones(similarities.shape, dtype=bool), k=1)
    different = identities[:, None] != identities[None, :]
    return similarities[upper & different]


def cosine_at_far(impostors: np.ndarray, fars: list[float]) -> dict[str, float]:
    """The cosine above which a fraction `far` of impostor pairs lies, for each FAR."""
    ordered = np.sort(impostors)[::-1]
    result = {}
    for far in fars:
        rank = max(int(np.floor(far * len(ordered))) - 1, 0)
        result[f"{far:.0e}".replace("e-0", "e-")] = float(ordered[rank])
    return result
