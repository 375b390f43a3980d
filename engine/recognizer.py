"""ArcFace-style recognizers: aligned 112x112 crops in, unit-length embeddings out."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.backends import Backend
from engine.preprocess import to_blob
from models.manifest import ModelSpec


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class ArcFaceRecognizer:
    """Embeds aligned crops; with `flip`, the embedding of the mirrored crop is added before normalising."""

    def __init__(self, backend: Backend, spec: ModelSpec, *, flip: bool = True) -> None:
        self.backend = backend
        self.spec = spec
        self.flip = flip

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, D) unit vectors for N aligned RGB crops."""
        if not crops:
            return np.zeros((0, 0), dtype=np.float32)
        batch = to_blob(crops, self.spec.input)
        if self.flip:
            batch = np.concatenate([batch, batch[..., ::-1]])
        output = next(iter(self.backend.infer({self.spec.input.name: np.ascontiguousarray(batch)}).values()))
        if self.flip:
            output = output[: len(crops)] + output[len(crops) :]
        return l2_normalise(output.astype(np.float32))


class RecognizerEnsemble:
    """Several recognizers on the same crop: unit embeddings concatenated and rescaled to unit length, so the
    cosine of two ensemble embeddings is the mean of the members' cosines.

    The members run at once, the first in the caller's thread and the others in a small pool: a model runs
    on one core (more intra-op threads cost more than they gain on these small graphs), so at low load the
    second recognizer would otherwise leave a core idle (docs/PERFORMANCE.md).
    """

    def __init__(self, members: list[ArcFaceRecognizer]) -> None:
        sizes = {member.spec.input.size for member in members}
        if len(sizes) != 1:
            raise ValueError(f"recognizers need one crop size, got {sorted(sizes)}")
        self.members = members
        self.crop_size: tuple[int, int] = sizes.pop()
        self._pool = ThreadPoolExecutor(thread_name_prefix="recognizer") if len(members) > 1 else None

    @property
    def flip(self) -> bool:
        return all(member.flip for member in self.members)

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, 0), dtype=np.float32)
        others = [self._pool.submit(member.embed, crops) for member in self.members[1:]] if self._pool else []
        parts = [self.members[0].embed(crops), *(other.result() for other in others)]
        return np.concatenate(parts, axis=1) / np.sqrt(len(parts), dtype=np.float32)
