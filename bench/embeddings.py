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
    """Row i of `vectors` belongs to `paths[i]`; rows of images with no face are zero and flagged."""

    paths: list[Path]
    vectors: np.ndarray
    no_face: np.ndarray
    seconds_per_image: float

    def index(self) -> dict[Path, int]:
        return {path: i for i, path in enumerate(self.paths)}


def embed_paths(pipeline: FacePipeline, paths: list[Path], *, progress: bool = False) -> EmbeddedSet:
    vectors: list[np.ndarray | None] = []
    started = time.perf_counter()
    for count, path in enumerate(paths, 1):
        try:
            vectors.append(pipeline.embed_largest(pipeline.decode(path.read_bytes())))
        except BadInput:
            vectors.append(None)
        if progress and count % 500 == 0:
            print(f"  embedded {count}/{len(paths)}", flush=True)
    elapsed = time.perf_counter() - started
    dim = next((v.shape[0] for v in vectors if v is not None), 1)
    matrix = np.zeros((len(paths), dim), dtype=np.float32)
    for i, vector in enumerate(vectors):
        if vector is not None:
            matrix[i] = vector
    no_face = np.array([v is None for v in vectors], dtype=bool)
    return EmbeddedSet(paths=paths, vectors=matrix, no_face=no_face, seconds_per_image=elapsed / max(len(paths), 1))


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
