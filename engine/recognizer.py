"""ArcFace-style recognizers: aligned 112x112 crops in, unit-length embeddings out."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.backends import Backend
from engine.preprocess import AlignedCrops, Warp
from models.manifest import ModelSpec


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


# A face to embed: its image and the 2x3 similarity transform of the image onto the aligned crop.
Aligned = tuple[np.ndarray, np.ndarray]


class ArcFaceRecognizer:
    """Embeds aligned faces; with `flip`, the embedding of the mirrored crop is added before normalising."""

    def __init__(self, backend: Backend, spec: ModelSpec, *, flip: bool = True) -> None:
        self.backend = backend
        self.spec = spec
        self.flip = flip

    def embed(self, faces: list[Aligned], crops: AlignedCrops | None = None) -> np.ndarray:
        """(N, D) unit vectors for N faces of RGB images, each warped by its matrix to the crop; `crops`
        shares the warps with other recognizers embedding the same faces."""
        return self.embed_measured(faces, crops)[0]

    def embed_measured(self, faces: list[Aligned], crops: AlignedCrops | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`embed`, and each embedding's length before normalising (of the mean over the crop and its mirror),
        which bench/face_check.py measures as a sign of what is not a face."""
        if not faces:
            return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.float32)
        size = self.spec.input.size
        requests = [Warp(pixels, matrix, size, crops=crops) for pixels, matrix in faces]
        if self.flip:
            requests += [Warp(pixels, matrix, size, flip=True, crops=crops) for pixels, matrix in faces]
        output = next(iter(self.backend.infer_images(self.spec.input, requests).values())).astype(np.float32)
        if self.flip:
            output = (output[: len(faces)] + output[len(faces) :]) / 2
        return l2_normalise(output), np.linalg.norm(output, axis=1)


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

    def embed(self, faces: list[Aligned]) -> np.ndarray:
        if not faces:
            return np.zeros((0, 0), dtype=np.float32)
        crops = AlignedCrops()  # every member takes the same crops: warped once
        others = [self._pool.submit(member.embed, faces, crops) for member in self.members[1:]] if self._pool else []
        parts = [self.members[0].embed(faces, crops), *(other.result() for other in others)]
        return np.concatenate(parts, axis=1) / np.sqrt(len(parts), dtype=np.float32)
