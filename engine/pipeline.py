"""The face pipeline: decode, detect, landmarks, align, embed, score, composed from the stages."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from engine.align import similarity_matrix
from engine.backends import Backend, BackendInfo, create_backend
from engine.backends.int8 import graph_for, read_route
from engine.coarse import CoarseToFine, iou
from engine.decode import DecodedImage, DecodeLimits, decode_image
from engine.detector import CANVAS_STEP, UltraFaceDetector
from engine.errors import InferenceFailed
from engine.face_check import FaceCheck
from engine.face_classifier import OnetFaceClassifier
from engine.faces import Detection, Face
from engine.landmarks import Pfld68Landmarks, five_points
from engine.liveness import LivenessCheck, MiniFasNetLiveness
from engine.profiles import profile_named
from engine.quality import FaceQuality, face_quality
from engine.recognizer import ArcFaceRecognizer, RecognizerEnsemble
from engine.score import SimilarityCalibration
from models import paths
from models.manifest import NOT_QUANTIZED, Manifest, ModelSpec, load_manifest
from models.store import PreparedModel, prepared_models

DETECTORS = {"ultraface": UltraFaceDetector}
LANDMARKS = {"pfld68": Pfld68Landmarks}
RECOGNIZERS = {"arcface": ArcFaceRecognizer}
LIVENESS = {"minifasnet": MiniFasNetLiveness}
FACE_CLASSIFIERS = {"onet": OnetFaceClassifier}

DEFAULT_THRESHOLD = 80.0
# The detector and the landmarks in INT8, the recognizers in FP16 (FP32 on a backend without FP16): INT8 costs
# the recognizers' precision most, the other two stages hardly any (docs/INT8.md, "The mixed route").
MIXED_INT8 = "int8-mixed"

T = TypeVar("T")


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline runs on and how; every field has a default that is the measured best."""

    backend: str = "onnxruntime"
    precision: str = "fp32"
    max_batch: int = 32
    threads: int = 0
    max_faces: int = 100
    flip: bool = False
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    # None: every image gets the fine pass only (engine/coarse.py).
    coarse: CoarseToFine | None = field(default_factory=CoarseToFine)
    # engine/profiles.py: "fast" trades small faces and some accuracy for speed.
    profile: str = "accurate"
    # While cores are idle, a compare decodes and detects its two photos at once (the same answers); False:
    # always one after the other.
    photos_at_once: bool = True


@dataclass(frozen=True)
class ChosenFace:
    """A face the API reports: its box, the detector's confidence, its quality and (for the target) the
    similarity."""

    detection: Detection
    image_width: int
    image_height: int
    similarity: float | None = None
    quality: FaceQuality | None = None


@dataclass(frozen=True)
class CompareResult:
    face: ChosenFace | None
    match: ChosenFace | None
    threshold: float
    liveness_check: LivenessCheck | None = None  # with its threshold resolved; None: not checked
    liveness: float | None = None  # the matched target face's liveness score, when checked

    @property
    def is_live(self) -> bool:
        return self.liveness_check is not None and self.liveness is not None and \
            self.liveness >= self.liveness_check.threshold

    @property
    def is_match(self) -> bool:
        similar = self.match is not None and self.match.similarity is not None and \
            self.match.similarity >= self.threshold
        return similar and not self.refused_as_not_live

    @property
    def refused_as_not_live(self) -> bool:
        """The workspace requires liveness and the target face is not live (or there is none)."""
        return self.liveness_check is not None and self.liveness_check.required and not self.is_live


def intra_op_threads(requested: int, models: int) -> int:
    """`requested`, or for 0 the cores this process may use shared out among the models, at least one each:
    under load all the models run at once, and more threads than cores only fight (docs/PERFORMANCE.md)."""
    if requested > 0:
        return requested
    return max(1, len(os.sched_getaffinity(0)) // models)


def sample_shape(spec: ModelSpec) -> tuple[int, int, int]:
    """One input sample (C, H, W) as the manifest declares it: what fixes a TensorRT profile's free axes."""
    width, height = spec.input.size
    return (1 if spec.input.channels == "grey" else 3, height, width)


def input_bounds(spec: ModelSpec) -> dict[str, dict[str, tuple[int, ...]]]:
    """A backend's `sample_shapes` and `min_sample_shapes` for the model: the manifest's size, down to one
    canvas step for the detector, whose canvas fits its images."""
    channels, height, width = sample_shape(spec)
    smallest = (channels, CANVAS_STEP, CANVAS_STEP) if spec.family in DETECTORS else (channels, height, width)
    return {"sample_shapes": {spec.input.name: (channels, height, width)},
            "min_sample_shapes": {spec.input.name: smallest}}


class FacePipeline:
    """One instance per process: backends load once; `compare` is safe to call from several threads."""

    def __init__(self, config: PipelineConfig = PipelineConfig(), manifest: Manifest | None = None,
                 models: dict[str, PreparedModel] | None = None) -> None:
        self.config = config
        self.profile = profile_named(config.profile)
        self.manifest = manifest or load_manifest()
        self.models = models or prepared_models(self.manifest)
        (detector_spec,) = self.manifest.for_role("detector")
        (landmarks_spec,) = self.manifest.for_role("landmarks")
        recognizer_specs = [spec for spec in self.manifest.for_role("recognizer") if self.profile.keeps(spec.name)]
        liveness_specs = self.manifest.for_role("liveness")
        classifier_specs = self.manifest.for_role("face_check")
        specs = (detector_spec, landmarks_spec, *recognizer_specs)
        # The liveness model runs only when asked: the cores are shared among the models every compare runs.
        self.threads = intra_op_threads(config.threads, len(specs))
        # OpenCV's pool (resize, warp, blob) is process-wide: as many threads as one model gets. The compares
        # already run side by side; splitting a 1 ms resize across cores only adds wake-ups (docs/PERFORMANCE.md).
        cv2.setNumThreads(self.threads)
        self._int8_when_mixed = {detector_spec.name, landmarks_spec.name}
        self._not_quantized = {name for name, role in self.manifest.pipeline.roles().items() if role in NOT_QUANTIZED}
        self.backends = {spec.name: self._backend(spec) for spec in (*specs, *liveness_specs, *classifier_specs)}
        self.detector = DETECTORS[detector_spec.family](self.backends[detector_spec.name], detector_spec,
                                                        max_faces=config.max_faces)
        self.face_check = FaceCheck(self.detector, next(
            (FACE_CLASSIFIERS[spec.family](self.backends[spec.name], spec) for spec in classifier_specs), None))
        self.landmarks = LANDMARKS[landmarks_spec.family](self.backends[landmarks_spec.name], landmarks_spec)
        self.recognizer = RecognizerEnsemble([
            RECOGNIZERS[spec.family](self.backends[spec.name], spec, flip=config.flip) for spec in recognizer_specs])
        self.liveness = next((LIVENESS[spec.family](self.backends[spec.name], spec) for spec in liveness_specs), None)
        # A compare works on its two photos at once while the cores outnumber the threads the compares in
        # flight would keep busy that way (two each); under load each compare stays on its one thread.
        self._cores = len(os.sched_getaffinity(0))
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._photos = ThreadPoolExecutor(max(1, self._cores - 1), thread_name_prefix="photo") \
            if self._cores > 1 else None
        # The target's fine pass runs alone, nothing of the origin beside it: a second session of the detector
        # on every core for it while the compare has them to itself (the same boxes: ONNX Runtime shares out a
        # layer's outputs among its threads, not the sums of one output).
        wide = self._photos is not None and config.photos_at_once and config.backend == "onnxruntime" and \
            config.coarse is not None and self.profile.canvas is None and self._cores > self.threads
        self._wide_detector = DETECTORS[detector_spec.family](
            self._model_backend(detector_spec, self._cores), detector_spec, max_faces=config.max_faces) \
            if wide else None

    @cached_property
    def calibration(self) -> SimilarityCalibration:
        """Loaded on first use, so the calibration tool can embed with a pipeline that has none yet."""
        return SimilarityCalibration.load(self.similarity_path)

    @property
    def similarity_path(self) -> Path:
        """The calibration of this profile's recognizers."""
        return self.profile.similarity_path(self.manifest)

    def _precision(self, spec: ModelSpec) -> str:
        """The configured precision; the liveness model and the face check's classifier are never quantized
        (their thresholds are measured in FP32); `int8-mixed` quantizes the detector and the landmarks only."""
        if self.config.precision != MIXED_INT8:
            return "fp32" if self.config.precision == "int8" and spec.name in self._not_quantized \
                else self.config.precision
        if spec.name in self._int8_when_mixed:
            return "int8"
        return "fp16" if self.config.backend == "tensorrt" else "fp32"

    def _backend(self, spec: ModelSpec) -> Backend:
        return self._model_backend(spec, self.threads)

    def _model_backend(self, spec: ModelSpec, threads: int) -> Backend:
        precision = self._precision(spec)
        int8 = read_route(paths.calibration_dir()) if precision == "int8" else None
        calibration = int8.calibration if int8 is not None and int8.name == "calibrator" else ""
        return create_backend(self.config.backend, self._onnx_for(spec), precision=precision,
                              max_batch=self.config.max_batch, threads=threads, calibration=calibration,
                              **input_bounds(spec))

    def _onnx_for(self, spec: ModelSpec) -> Path:
        """INT8 takes the route of the last calibration (`engine.backends.int8`, docs/INT8.md)."""
        model = self.models[spec.name]
        if self._precision(spec) != "int8":
            return model.prepared
        return graph_for(self.config.backend, read_route(paths.calibration_dir()), model.prepared, model.quantized,
                         spec.name)

    def close(self) -> None:
        """Release every model, device memory included: at the service's shutdown, in tools and tests."""
        if self._photos is not None:
            self._photos.shutdown(wait=True)
        if self._wide_detector is not None:
            self._wide_detector.backend.close()
        for backend in self.backends.values():
            backend.close()

    @property
    def backend_info(self) -> BackendInfo:
        return next(iter(self.backends.values())).info

    def decode(self, data: bytes) -> DecodedImage:
        return decode_image(data, self.config.limits)

    def detect(self, images: list[DecodedImage], detector: UltraFaceDetector | None = None) -> list[list[Detection]]:
        """The faces of each image, largest first: the detector's boxes that its second look confirms."""
        found = (detector or self.detector).detect([image.pixels for image in images], self.profile.canvas)
        return self.checked(images, found)

    def checked(self, images: list[DecodedImage], found: list[list[Detection]]) -> list[list[Detection]]:
        """The boxes the detector finds again, looking at each in the pixels its crops come from (`crop_source`):
        a small face of a large JPEG is looked at in the file's own pixels, not enlarged from the decoded ones."""
        sources = [self.crop_source(image, boxes) for image, boxes in zip(images, found, strict=True)]
        return self.face_check.keep(sources, found)

    def faces(self, images: list[np.ndarray], detections: list[list[Detection]]) -> list[list[Face]]:
        """Landmarks, alignment and embeddings for the given detections, batched over all images."""
        flat = [(image, detection) for image, found in zip(images, detections, strict=True) for detection in found]
        landmarks = self.landmarks.landmarks68(flat)
        points = five_points(landmarks)
        size = self.recognizer.crop_size
        aligned = [(image, similarity_matrix(p, size)) for (image, _), p in zip(flat, points, strict=True)]
        embeddings = self.recognizer.embed(aligned)
        result: list[list[Face]] = []
        index = 0
        for found in detections:
            result.append([Face(d, points[index + i], embeddings[index + i], landmarks[index + i])
                           for i, d in enumerate(found)])
            index += len(found)
        return result

    def chosen(self, image: DecodedImage, detection: Detection, landmarks: np.ndarray,
               similarity: float | None = None) -> ChosenFace:
        """A face for the answer, its quality measured (a fraction of a millisecond); its size is the box's
        width in the file's pixels."""
        quality = face_quality(image.pixels, landmarks, round(detection.width * image.source_scale))
        return ChosenFace(detection, image.width, image.height, similarity=similarity, quality=quality)

    def crop_source(self, image: DecodedImage, detections: list[Detection]) -> tuple[np.ndarray, list[Detection]]:
        """The pixels to take landmark and alignment crops from, and the detections in them: the decoded image,
        or, when a face to embed is narrower there than the crop it is aligned into, the file decoded again
        as much larger as that face needs, up to the file's own resolution (the DCT-scaled decode halves a
        50 px face of a Full HD photo; docs/ACCURACY.md). Large faces pay nothing."""
        crop_width = self.recognizer.crop_size[0]
        narrowest = min((d.width for d in detections), default=float(crop_width))
        if narrowest >= crop_width or not self.profile.sharper_crops:
            return image.pixels, detections
        sharper = image.sharper(crop_width / max(narrowest, 1.0))
        if sharper is image:
            return image.pixels, detections
        x, y = sharper.width / image.width, sharper.height / image.height
        return sharper.pixels, [d.scaled(x, y) for d in detections]

    def embedded(self, images: list[DecodedImage], detections: list[list[Detection]]) -> list[list[Face]]:
        """`faces`, each image's landmark and alignment crops taken from `crop_source`; the faces keep their
        boxes and points in the decoded image's pixels, where the API reports them."""
        sources = [self.crop_source(image, found) for image, found in zip(images, detections, strict=True)]
        faces = self.faces([pixels for pixels, _ in sources], [boxes for _, boxes in sources])
        result = []
        for image, (pixels, _), found, embedded in zip(images, sources, detections, faces, strict=True):
            to_decoded = np.array([image.width / pixels.shape[1], image.height / pixels.shape[0]], dtype=np.float32)
            result.append([Face(d, f.points * to_decoded, f.embedding, f.landmarks * to_decoded)
                           for d, f in zip(found, embedded, strict=True)])
        return result

    def compare_images(self, origin: DecodedImage, target: DecodedImage, threshold: float | None = None,
                       liveness: LivenessCheck | None = None) -> CompareResult:
        """The API's face choice: the largest face of the origin, the most similar of the target's faces; with
        `liveness`, that target face's liveness too (the target is the live capture)."""
        with self._computing() as at_once:
            return self._compare_images(origin, target, threshold, liveness, at_once)

    def _compare_images(self, origin: DecodedImage, target: DecodedImage, threshold: float | None,
                        liveness: LivenessCheck | None, at_once: bool) -> CompareResult:
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        check = self.resolve_liveness(liveness)
        try:
            if self.config.coarse is not None and self.profile.canvas is None:
                result = self._compare_coarse_to_fine(origin, target, threshold, self.config.coarse, at_once)
            else:
                result = self._compare_fine(origin, target, threshold, at_once)
            score = self.liveness_scores([(target.pixels, result.match.detection)])[0] \
                if check and result.match is not None else None
        except (RuntimeError, ValueError, MemoryError, cv2.error) as exc:
            raise InferenceFailed("inference failed") from exc
        return replace(result, liveness_check=check, liveness=score)

    @property
    def compares_in_flight(self) -> int:
        """Compares running now: how many callers the service's batchers may wait for."""
        return self._in_flight

    @contextmanager
    def _computing(self) -> Iterator[bool]:
        """Counts the compare while it runs; yields whether it may work on its two photos at once."""
        with self._in_flight_lock:
            self._in_flight += 1
            at_once = self.config.photos_at_once and self._photos is not None and self._in_flight * 2 <= self._cores
        try:
            yield at_once
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _side_by_side(self, at_once: bool, tasks: Sequence[Callable[[], T]]) -> list[T]:
        """Each task's result, in order. `at_once`: all but the last on the photo pool while the last runs here
        (the decoders and ONNX Runtime release the GIL); an error is raised in the tasks' order, as one after
        the other would, once every task has ended."""
        if not at_once or self._photos is None or len(tasks) < 2:
            return [task() for task in tasks]
        futures = [self._photos.submit(task) for task in tasks[:-1]]
        try:
            last = tasks[-1]()
        except BaseException:
            wait(futures)
            for future in futures:
                future.result()  # an earlier task's error comes first
            raise
        return [*(future.result() for future in futures), last]

    def _detect_both(self, origin: DecodedImage, target: DecodedImage, at_once: bool) -> list[list[Detection]]:
        """`detect` of the two photos: one batch, or with `at_once` each on a core of its own."""
        if not at_once:
            return self.detect([origin, target])
        return self._side_by_side(True, [lambda: self.detect([origin])[0], lambda: self.detect([target])[0]])

    def _compare_fine(self, origin: DecodedImage, target: DecodedImage, threshold: float,
                      at_once: bool) -> CompareResult:
        origin_found, target_found = self._detect_both(origin, target, at_once)
        return self._compare_found(origin, target, origin_found, target_found, threshold)

    def _compare_found(self, origin: DecodedImage, target: DecodedImage, origin_found: list[Detection],
                       target_found: list[Detection], threshold: float) -> CompareResult:
        """`_compare_fine` once both photos' checked faces are found."""
        if not origin_found:
            return CompareResult(face=None, match=None, threshold=threshold)
        if not target_found:
            return self._origin_alone(origin, origin_found[0], threshold)
        (probe,), candidates = self.embedded([origin, target], [origin_found[:1], target_found])
        return self._answer(origin, target, probe, self._most_similar(probe, candidates), threshold)

    def _alone_detector(self, at_once: bool) -> UltraFaceDetector:
        """The detector for a pass that runs with nothing beside it: on every core while the compare has them."""
        return self._wide_detector if at_once and self._wide_detector is not None else self.detector

    def _coarse_boxes(self, origin: DecodedImage, target: DecodedImage, rule: CoarseToFine,
                      at_once: bool) -> tuple[Detection | None, Callable[[], list[Detection]]]:
        """The origin's face from the coarse pass (None: the fine pass chooses it) and the target's checked
        candidates, asked for once the origin has a face. With `at_once` each photo gets a core of its own,
        and the target's candidates are found while the origin's face is chosen; else both coarse canvases
        run as one batch and the candidates only when asked for."""
        def origin_box(found: list[Detection]) -> Detection | None:
            box = rule.largest(self.detector, origin.pixels, found)
            return box if box is not None and self.checked([origin], [[box]])[0] else None

        def target_boxes(found: list[Detection]) -> list[Detection]:
            return self.checked([target], [rule.candidates(self.detector, target.pixels, found)])[0]

        if at_once:
            boxes: list = self._side_by_side(True, [
                lambda: origin_box(self.detector.detect([origin.pixels], rule.canvas)[0]),
                lambda: target_boxes(self.detector.detect([target.pixels], rule.canvas)[0])])
            return boxes[0], lambda: boxes[1]
        coarse_origin, coarse_target = self.detector.detect([origin.pixels, target.pixels], rule.canvas)
        return origin_box(coarse_origin), lambda: target_boxes(coarse_target)

    def _compare_coarse_to_fine(self, origin: DecodedImage, target: DecodedImage, threshold: float,
                                rule: CoarseToFine, at_once: bool) -> CompareResult:
        """The fine pass's answer, from the coarse pass where it already holds it (engine/coarse.py)."""
        origin_box, target_boxes = self._coarse_boxes(origin, target, rule, at_once)
        probe: Face | None = None
        embedded: list[Face] = []
        if origin_box is not None:
            (probe,), embedded = self.embedded([origin, target], [[origin_box], target_boxes()])
            if embedded:
                best = self._most_similar(probe, embedded)
                if best[1] >= threshold and rule.decided(best[1], threshold):
                    return self._answer(origin, target, probe, best, threshold)
        origin_from_coarse = probe is not None
        if origin_from_coarse:
            (target_boxes_fine,) = self._alone_detector(at_once).detect([target.pixels], self.profile.canvas)
            target_found = self._checked_again(target, target_boxes_fine, [face.detection for face in embedded],
                                               rule.same_face_iou)
        else:
            origin_found, target_found = self._detect_both(origin, target, at_once)
            if not origin_found:
                return CompareResult(face=None, match=None, threshold=threshold)
        if not target_found:
            if probe is not None:
                return CompareResult(face=self.chosen(origin, probe.detection, probe.landmarks), match=None,
                                     threshold=threshold)
            return self._origin_alone(origin, origin_found[0], threshold)
        # A fine face the coarse pass already embedded keeps that embedding, reported with the fine box.
        kept, new = [], []
        for found in target_found:
            same = next((face for face in embedded if iou(found, face.detection) >= rule.same_face_iou), None)
            (new if same is None else kept).append(
                found if same is None else Face(found, same.points, same.embedding, same.landmarks))
        if origin_from_coarse:
            (fresh,) = self.embedded([target], [new])
        else:
            (probe,), fresh = self.embedded([origin, target], [origin_found[:1], new])
        best = self._most_similar(probe, [*fresh, *kept])
        # Only an origin from the coarse pass has coarse embeddings, so the answer rests on the coarse pass
        # exactly when the origin does.
        if origin_from_coarse and not rule.decided(best[1], threshold):
            return self._compare_fine_again(origin, target, target_boxes_fine, threshold, at_once)
        return self._answer(origin, target, probe, best, threshold)

    def _checked_again(self, image: DecodedImage, found: list[Detection], kept: list[Detection],
                       same_face_iou: float) -> list[Detection]:
        """`checked` of an image's fine boxes where the check already kept `kept` (the refined boxes of the same
        faces, a pixel or two off): each kept face's fine box (the most overlapping, IoU >= `same_face_iou`)
        stands without a second look, and with every kept face among them the classifier need not look again."""
        if not kept:
            return self.checked([image], [found])[0]
        confirmed = [False] * len(found)
        for box in kept:
            twin = max(range(len(found)), key=lambda i: iou(found[i], box), default=None)
            if twin is None or iou(found[twin], box) < same_face_iou:
                return self.checked([image], [found])[0]  # a kept face the fine pass does not box: check all
            confirmed[twin] = True
        if all(confirmed):
            return found  # nothing left to look at: no crop source (a larger decode) is asked for
        return self.face_check.keep_beside(self.crop_source(image, found), found, confirmed)

    def _compare_fine_again(self, origin: DecodedImage, target: DecodedImage, target_boxes: list[Detection],
                            threshold: float, at_once: bool) -> CompareResult:
        """`_compare_fine`, the target's fine boxes (before the check) already found: an image's boxes do not
        depend on the detector's session or the batch it ran in (tests/test_coarse.py), so only the origin's
        fine pass and the target's whole check are left, side by side."""
        origin_found, target_found = self._side_by_side(at_once, [
            lambda: self.detect([origin])[0], lambda: self.checked([target], [target_boxes])[0]])
        return self._compare_found(origin, target, origin_found, target_found, threshold)

    def _most_similar(self, probe: Face, candidates: list[Face]) -> tuple[Face, float]:
        """The candidate most similar to the probe and its calibrated similarity: what decides whether a coarse
        answer stands, before the answer's faces are measured for quality."""
        cosines = np.stack([c.embedding for c in candidates]) @ probe.embedding
        best = int(np.argmax(cosines))
        return candidates[best], self.calibration.similarity(float(cosines[best]))

    def _answer(self, origin: DecodedImage, target: DecodedImage, probe: Face, best: tuple[Face, float],
                threshold: float) -> CompareResult:
        """The probe and the most similar candidate (`_most_similar`), as the API reports them."""
        face, similarity = best
        match = self.chosen(target, face.detection, face.landmarks, similarity=similarity)
        return CompareResult(face=self.chosen(origin, probe.detection, probe.landmarks), match=match,
                             threshold=threshold)

    def _origin_alone(self, origin: DecodedImage, detection: Detection, threshold: float) -> CompareResult:
        """No face in the target: nothing to compare, but the origin's quality still says what is wrong or
        right with it."""
        (landmarks,) = self.landmarks.landmarks68([(origin.pixels, detection)])
        return CompareResult(face=self.chosen(origin, detection, landmarks), match=None, threshold=threshold)

    def compare(self, origin: bytes, target: bytes, threshold: float | None = None,
                liveness: LivenessCheck | None = None,
                timed: Callable[[str, float], None] | None = None) -> CompareResult:
        """`compare_images` of the two files, decoded at once while cores are idle; `timed(stage, seconds)`
        hears how long the decodes ("decode") and the rest ("compare") took: the service's metrics."""
        with self._computing() as at_once:
            started = time.monotonic()
            origin_image, target_image = self._side_by_side(
                at_once, [lambda: self.decode(origin), lambda: self.decode(target)])
            decoded = time.monotonic()
            result = self._compare_images(origin_image, target_image, threshold, liveness, at_once)
        if timed is not None:
            timed("decode", decoded - started)
            timed("compare", time.monotonic() - decoded)
        return result

    def resolve_liveness(self, check: LivenessCheck | None) -> LivenessCheck | None:
        """The check with the shipped threshold filled in where it names none."""
        if check is None or check.threshold is not None:
            return check
        return replace(check, threshold=self._liveness_stage().threshold)

    def _liveness_stage(self) -> MiniFasNetLiveness:
        if self.liveness is None:
            raise InferenceFailed("the manifest names no liveness model")
        return self.liveness

    def liveness_scores(self, faces: list[tuple[np.ndarray, Detection]]) -> list[float]:
        """The liveness score (0-100) of each (RGB image, detection)."""
        return self._liveness_stage().scores(faces)

    def largest_face_liveness(self, image: DecodedImage) -> tuple[Detection, float] | None:
        """The largest face and its liveness score, None without a face: `facecompare liveness`."""
        (found,) = self.detect([image])
        return (found[0], self.liveness_scores([(image.pixels, found[0])])[0]) if found else None

    def embed_all(self, image: DecodedImage) -> np.ndarray:
        """(faces, D) embeddings of every face, largest first: what the benchmarks and calibration use."""
        (found,) = self.detect([image])
        if not found:
            return np.zeros((0, 1), dtype=np.float32)
        (faces,) = self.embedded([image], [found])
        return np.stack([face.embedding for face in faces])
