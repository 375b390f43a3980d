"""Face quality for the answer: brightness, sharpness, head pose and size, so a kiosk can say why a photo fails.

Brightness and sharpness are read from the grey inner part of a 112x112 crop aligned as the recognizer's
is, warped here from the decoded image (0.12 ms, bench/results/quality-per-face.txt): the numbers do not
depend on where, or on which device, the recognizer's own crop is made. Only the inner face (eyes to chin,
cheek to cheek) counts, so background and hair do not; a face cut by the image's edge has its edge pixels
repeated rather than black, which would read as dark and sharp.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.align import similarity_matrix
from engine.landmarks import LEFT_EYE, RIGHT_EYE, five_points

CROP_SIZE = (112, 112)
# The inner face in the aligned crop (x1, y1, x2, y2): around the template's eyes (y 52), nose (72) and
# mouth (92), inside the cheeks.
INNER_FACE = (28, 36, 84, 104)
# Variance of the Laplacian at which sharpness reads 50; the scale saturates smoothly towards 100. LFW dev's
# faces read 30-75 (5th-95th percentile), the test photos' 54-93, both blurred by a sigma of 2 pixels under
# 12 and 66 (bench/results/quality-values.txt).
SHARPNESS_HALF = 150.0

# A generic head at six of the 68 points: nose tip, chin, the eyes' outer corners, the mouth's corners. It is
# the six-point model common in head-pose estimation (S. Mallick, "Head Pose Estimation using OpenCV and
# Dlib", LearnOpenCV, 2016), scaled by 1/5.2 to about millimetres and turned to camera axes (x right, y down, z away
# from the camera). These points move least with expression; the jaw line and brows, which more points
# would add, are where the landmark model is least sure.
POSE_POINTS = (30, 8, 36, 45, 48, 54)
HEAD_MODEL = np.array([
    (0.0, 0.0, 0.0),
    (0.0, 63.6, 12.5),
    (-43.3, -32.7, 26.0),
    (43.3, -32.7, 26.0),
    (-28.9, 28.9, 24.1),
    (28.9, 28.9, 24.1),
], dtype=np.float64)
FAR_FACE_FOCALS = 20.0


@dataclass(frozen=True)
class Pose:
    """Degrees. yaw > 0: the face turns towards the image's right; pitch > 0: it looks up; roll > 0: the
    eye line slopes down to the image's right (the head tilts clockwise as seen in the image)."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class FaceQuality:
    brightness: float
    sharpness: float
    pose: Pose
    size_px: int


def inner_face(pixels: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The grey inner face of the aligned crop, warped from the image's pixels."""
    x1, y1, x2, y2 = INNER_FACE
    matrix = similarity_matrix(five_points(landmarks), CROP_SIZE) - np.array([[0, 0, x1], [0, 0, y1]])
    # Only the inner face is warped: a third of the crop's pixels.
    inner = cv2.warpAffine(pixels, matrix, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(inner, cv2.COLOR_RGB2GRAY) if inner.ndim == 3 else inner


def brightness(grey: np.ndarray) -> float:
    """Mean luma (BT.601) as 0-100."""
    return float(grey.mean()) * 100.0 / 255.0


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian mapped to 0-100: v / (v + SHARPNESS_HALF), which keeps its order at every
    level (a blurred copy always reads lower) and never quite reaches 100."""
    variance = float(cv2.Laplacian(grey, cv2.CV_32F).var())
    return 100.0 * variance / (variance + SHARPNESS_HALF)


def pose(landmarks: np.ndarray, image_shape: tuple[int, ...]) -> Pose:
    """Yaw and pitch by fitting the generic head to six landmarks (cv2.solvePnP) through a pinhole camera of
    focal length the image's long side (a 53 degree view: a phone's or a webcam's) whose axis passes through
    the nose tip, so the angles are against the line from the face to the lens: 0, 0 is looking into the
    camera wherever the face is in the frame. Roll is the eye line's slope, which needs no model."""
    image_points = landmarks[list(POSE_POINTS)].astype(np.float64)
    # A face under a twentieth of the focal length is far enough for perspective not to matter (the angles
    # stay within 0.3 degrees), and SQPnP refuses points that span too little of it: the camera comes closer.
    focal = min(float(max(image_shape[:2])), FAR_FACE_FOCALS * float(np.ptp(image_points, axis=0).max()))
    nose_x, nose_y = (float(v) for v in landmarks[POSE_POINTS[0]])
    camera = np.array([[focal, 0.0, nose_x], [0.0, focal, nose_y], [0.0, 0.0, 1.0]])
    found, rotation, _ = cv2.solvePnP(HEAD_MODEL, image_points, camera, None, flags=cv2.SOLVEPNP_SQPNP)
    if not found:
        raise ValueError("no head pose fits the landmarks")
    matrix, _ = cv2.Rodrigues(rotation)
    # The face's forward axis (model -z, towards the camera) seen in camera axes gives yaw and pitch.
    forward = -matrix[:, 2]
    yaw = np.degrees(np.arctan2(forward[0], -forward[2]))
    pitch = np.degrees(np.arctan2(-forward[1], np.hypot(forward[0], forward[2])))
    left, right = landmarks[list(LEFT_EYE)].mean(0), landmarks[list(RIGHT_EYE)].mean(0)
    roll = np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))
    return Pose(yaw=round(float(yaw), 1), pitch=round(float(pitch), 1), roll=round(float(roll), 1))


def face_quality(pixels: np.ndarray, landmarks: np.ndarray, size_px: int) -> FaceQuality:
    """`landmarks`: the 68 points in the coordinates of `pixels` (whichever decode the crops were taken
    from); `size_px`: the face's width in the photo as sent, which only the caller knows."""
    grey = inner_face(pixels, landmarks)
    return FaceQuality(brightness=round(brightness(grey), 1), sharpness=round(sharpness(grey), 1),
                       pose=pose(landmarks, pixels.shape), size_px=size_px)
