"""Refusing boxes that are not faces, in two steps. First the detector looks again at each box's own
neighbourhood, with the face brought to the size its anchors see best, in the pixels the face's crops are taken
from (the file decoded larger for a small face), and a box it does not find again is dropped. Then a face
classifier (MTCNN's ONet, engine/face_classifier.py) looks at the boxes left: a photo keeps them only if it
takes at least one of them for a face.

Why the second look: on registry sample photos without a face (a cat, coins, text, textures, a motorcycle) the
detector reports boxes at confidence up to 1.0, while real faces, 50 px ones included, are found again in
their crop nearly always at 0.97 or more. The confidence itself, the box's shape, the landmarks' fit and
stability, the recognizers' embedding lengths and the liveness score were measured too: none refuses more
without losing real faces, profiles and small faces in the background first.

Why the classifier decides per photo, not per box: the best box of every face photo measured scores 0.96 or
more, every non-face photo's best 0.56 or less; but ONet, made for faces of 48 px and up, scores small faces
in a photo's background as low as 0.003, so a veto box by box would drop them (docs/ACCURACY.md, "Refusing
what is not a face").
"""

from __future__ import annotations

import numpy as np

from engine.detector import UltraFaceDetector
from engine.face_classifier import OnetFaceClassifier
from engine.faces import Detection
from engine.preprocess import square_crop

# The face is brought to FACE_PX pixels on a canvas CONTEXT times as wide, centred: at 64 px the face sits in
# the detector's middle anchors (48-96), and a 128 px canvas costs about a fifteenth of a 640x368 one.
FACE_PX = 64
CONTEXT = 2.0
MIN_OVERLAP = 0.3


def overlap(a: tuple[float, float, float, float], b: Detection) -> float:
    """Intersection over union of the box (x1, y1, x2, y2) and a detection."""
    width = max(0.0, min(a[2], b.x2) - max(a[0], b.x1))
    height = max(0.0, min(a[3], b.y2) - max(a[1], b.y1))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + b.area - inter
    return inter / union if union > 0 else 0.0


def neighbourhood(pixels: np.ndarray, detection: Detection) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The square around the box, scaled so the box's long side is FACE_PX, and where the box lands in it."""
    side = CONTEXT * FACE_PX
    scale = FACE_PX / max(detection.width, detection.height, 1.0)
    cx, cy = (detection.x1 + detection.x2) / 2, (detection.y1 + detection.y2) / 2
    crop = square_crop(pixels, cx, cy, side / scale, int(side))
    half_w, half_h = detection.width * scale / 2, detection.height * scale / 2
    return crop, (side / 2 - half_w, side / 2 - half_h, side / 2 + half_w, side / 2 + half_h)


class FaceCheck:
    """Drops the boxes the detector does not find again in their neighbourhood (one detector batch for all),
    then every box of a photo where the classifier sees no face (one classifier batch, one or two runs)."""

    def __init__(self, detector: UltraFaceDetector, classifier: OnetFaceClassifier | None = None) -> None:
        self.detector = detector
        self.classifier = classifier

    def second_look(self, images: list[np.ndarray], found: list[list[Detection]]) -> list[list[float]]:
        """For each box, the confidence of the detector's best box over it in the second look (0: none)."""
        crops, boxes = [], []
        for pixels, detections in zip(images, found, strict=True):
            for detection in detections:
                crop, box = neighbourhood(pixels, detection)
                crops.append(crop)
                boxes.append(box)
        again = self.detector.detect(crops) if crops else []
        scores = [max((d.score for d in seen if overlap(box, d) >= MIN_OVERLAP), default=0.0)
                  for box, seen in zip(boxes, again, strict=True)]
        return _regroup(scores, found)

    def face_probabilities(self, images: list[np.ndarray], found: list[list[Detection]]) -> list[list[float]]:
        """For each box, the classifier's face probability (1 for every box when there is no classifier)."""
        if self.classifier is None:
            return [[1.0] * len(boxes) for boxes in found]
        flat = [(pixels, d) for pixels, boxes in zip(images, found, strict=True) for d in boxes]
        return _regroup(self.classifier.probabilities(flat), found)

    def keep(self, sources: list[tuple[np.ndarray, list[Detection]]],
             found: list[list[Detection]]) -> list[list[Detection]]:
        """The boxes of `found` found again in their image's crop source (the pixels and the same boxes in them),
        and none of an image where the classifier takes none of those for a face."""
        looks = self.second_look([pixels for pixels, _ in sources], [boxes for _, boxes in sources])
        again = [[(d, d_px) for d, d_px, score in zip(detections, in_pixels, scores, strict=True) if score > 0]
                 for detections, (_, in_pixels), scores in zip(found, sources, looks, strict=True)]
        if self.classifier is None:
            return [[d for d, _ in boxes] for boxes in again]
        faces = self.classifier.sees_a_face([[(pixels, d_px) for _, d_px in boxes]
                                             for (pixels, _), boxes in zip(sources, again, strict=True)])
        return [[d for d, _ in boxes] if face else [] for boxes, face in zip(again, faces, strict=True)]

    def keep_beside(self, source: tuple[np.ndarray, list[Detection]], found: list[Detection],
                    confirmed: list[bool]) -> list[Detection]:
        """`keep` of one image's boxes where `confirmed` marks the faces this check already kept in this image,
        on boxes a pixel or two off these (coarse-to-fine's refined boxes), every face it kept there among them:
        those stand, the others get the second look, and the classifier need not look again (it took one of the
        kept faces for a face, which is all a photo needs)."""
        pixels, in_pixels = source
        rest = [i for i, known in enumerate(confirmed) if not known]
        looks = self.second_look([pixels], [[in_pixels[i] for i in rest]])[0] if rest else []
        passed = {i for i, score in zip(rest, looks, strict=True) if score > 0}
        return [d for i, d in enumerate(found) if confirmed[i] or i in passed]


def _regroup(values: list[float], found: list[list[Detection]]) -> list[list[float]]:
    """A flat list of one value per box, back into one list per image."""
    result, index = [], 0
    for detections in found:
        result.append(values[index : index + len(detections)])
        index += len(detections)
    return result
