"""A second opinion on the detector's boxes: MTCNN's output network (ONet) asks of a 48x48 crop "is this a
face?", a question the detector, trained to find faces rather than to refuse what is not one, answers badly on
motorcycle mirrors, coins or the Hubble deep field (docs/ACCURACY.md, "Refusing what is not a face").

Input as MTCNN's Caffe original was trained and its TFLite port still runs it: RGB, (x - 127.5) / 128, the
crop transposed (width first). Each box is scored on two squares, the better one counting: the square of the
box's width about its centre, and that square moved and resized by ONet's own box correction, as MTCNN refines
its boxes (a tall box's width square cuts the chin and brow that the corrected square finds again).
"""

from __future__ import annotations

import numpy as np

from engine.backends import Backend
from engine.faces import Detection
from engine.preprocess import square_crop, to_blob
from models.manifest import ModelSpec


class OnetFaceClassifier:
    """Face probabilities of many boxes, batched: at most two ONet runs for all of them."""

    def __init__(self, backend: Backend, spec: ModelSpec) -> None:
        self.backend = backend
        self.spec = spec
        self.threshold = float(spec.params["threshold"])

    def _run(self, squares: list[tuple[np.ndarray, float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
        """ONet on each (pixels, centre x, centre y, side): the face probability and the box correction
        (x1, y1, x2, y2 as fractions of the side)."""
        size = self.spec.input.size[0]
        crops = [square_crop(pixels, cx, cy, side, size) for pixels, cx, cy, side in squares]
        blob = np.ascontiguousarray(to_blob(crops, self.spec.input).transpose(0, 1, 3, 2))
        probabilities, corrections = [], []
        for start in range(0, len(blob), self.backend.max_batch):
            output = self.backend.infer({self.spec.input.name: blob[start : start + self.backend.max_batch]})
            probability, correction = (output[name] for name in self.spec.params["outputs"])
            probabilities.append(probability[:, 1])
            corrections.append(correction)
        return np.concatenate(probabilities), np.concatenate(corrections)

    def _corrected(self, squares: list[tuple[np.ndarray, float, float, float]],
                   corrections: np.ndarray) -> list[tuple[np.ndarray, float, float, float]]:
        """Each square moved and resized by ONet's box correction, made square again on its long side."""
        corrected = []
        for (pixels, cx, cy, side), (dx1, dy1, dx2, dy2) in zip(squares, corrections, strict=True):
            x1, y1 = cx - side / 2 + dx1 * side, cy - side / 2 + dy1 * side
            x2, y2 = cx + side / 2 + dx2 * side, cy + side / 2 + dy2 * side
            corrected.append((pixels, (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1, 1.0)))
        return corrected

    @staticmethod
    def _width_squares(boxes: list[tuple[np.ndarray, Detection]]) -> list[tuple[np.ndarray, float, float, float]]:
        return [(pixels, (d.x1 + d.x2) / 2, (d.y1 + d.y2) / 2, max(d.width, 1.0)) for pixels, d in boxes]

    def probabilities(self, boxes: list[tuple[np.ndarray, Detection]]) -> list[float]:
        """Each (RGB pixels, box)'s face probability, the better of its width square and the corrected one."""
        if not boxes:
            return []
        first = self._width_squares(boxes)
        found, corrections = self._run(first)
        again, _ = self._run(self._corrected(first, corrections))
        return [float(max(a, b)) for a, b in zip(found, again, strict=True)]

    def sees_a_face(self, groups: list[list[tuple[np.ndarray, Detection]]]) -> list[bool]:
        """For each group (a photo's boxes), whether any box's probability reaches the threshold: what
        `probabilities` would say, with the corrected squares looked at only in groups the first squares
        leave undecided (a face photo's best box nearly always decides on the first: one run, not two)."""
        flat = [box for group in groups for box in group]
        owner = [index for index, group in enumerate(groups) for _ in group]
        seen = [False] * len(groups)
        if not flat:
            return seen
        first = self._width_squares(flat)
        found, corrections = self._run(first)
        for index, probability in zip(owner, found, strict=True):
            seen[index] = seen[index] or bool(probability >= self.threshold)
        undecided = [i for i, index in enumerate(owner) if not seen[index]]
        if undecided:
            again, _ = self._run(self._corrected([first[i] for i in undecided], corrections[undecided]))
            for i, probability in zip(undecided, again, strict=True):
                seen[owner[i]] = seen[owner[i]] or bool(probability >= self.threshold)
        return seen
