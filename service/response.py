"""The API's JSON bodies, built in one place for the HTTP service and the command line alike."""

from __future__ import annotations

import uuid
from typing import Any

from engine.errors import ApiError
from engine.pipeline import ChosenFace, CompareResult
from engine.quality import FaceQuality
from engine.score import floor2

API_TYPE = "compare_face"


def new_transaction_id(device_id: str = "") -> str:
    """`<device id>-<32 hex>` when the device has an id (a balancer routes a job's GET on it), else 32 hex."""
    return f"{device_id}-{uuid.uuid4().hex}" if device_id else uuid.uuid4().hex


def bounding_box(face: ChosenFace) -> dict[str, float]:
    """Rekognition semantics: ratios of the upright image, origin top-left; may stray past 0..1 at edges."""
    d = face.detection
    return {
        "Width": round(d.width / face.image_width, 6),
        "Height": round(d.height / face.image_height, 6),
        "Left": round(d.x1 / face.image_width, 6),
        "Top": round(d.y1 / face.image_height, 6),
    }


def quality_body(quality: FaceQuality | None) -> dict[str, Any] | None:
    """Additive to the contract: what a kiosk needs to say "too dark" or "look at the camera"."""
    if quality is None:
        return None
    pose = quality.pose
    return {"brightness": quality.brightness, "sharpness": quality.sharpness,
            "pose": {"yaw": pose.yaw, "pitch": pose.pitch, "roll": pose.roll}, "sizePx": quality.size_px}


def _face_body(face: ChosenFace | None) -> dict[str, Any]:
    if face is None:
        return {"isAvailable": False, "confidence": 0.0, "boundingBox": None, "quality": None}
    return {"isAvailable": True, "confidence": floor2(face.detection.score * 100.0), "boundingBox": bounding_box(face),
            "quality": quality_body(face.quality)}


def liveness_body(score: float | None, threshold: float) -> dict[str, Any] | None:
    """A face's liveness verdict; null without a face (then there is nothing to check)."""
    if score is None:
        return None
    return {"score": score, "isLive": score >= threshold, "threshold": float(threshold)}


def compare_body(result: CompareResult, transaction_id: str) -> dict[str, Any]:
    """The 200 body of a compare; `faceMatch.liveness` only when liveness was checked."""
    match = _face_body(result.match)
    similarity = result.match.similarity if result.match and result.match.similarity is not None else 0.0
    match.update(similarity=similarity, isMatch=result.is_match, threshold=float(result.threshold))
    if result.liveness_check is not None:
        match["liveness"] = liveness_body(result.liveness, result.liveness_check.threshold)
    return {
        "statusCode": 200,
        "apiType": API_TYPE,
        "transactionId": transaction_id,
        "result": {"face": _face_body(result.face), "faceMatch": match},
    }


def stored_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body as kept for GET and sent by callback: the liveness verdict without its score (docs/LIVENESS.md)."""
    liveness = body.get("result", {}).get("faceMatch", {}).get("liveness")
    if not liveness:
        return body
    match = {**body["result"]["faceMatch"], "liveness": {k: v for k, v in liveness.items() if k != "score"}}
    return {**body, "result": {**body["result"], "faceMatch": match}}


def error_body(error: ApiError, transaction_id: str) -> dict[str, Any]:
    return {
        "statusCode": error.http_status,
        "apiType": API_TYPE,
        "transactionId": transaction_id,
        "errorCode": error.error_code,
        "message": error.full_message,
    }


def accepted_body(transaction_id: str) -> dict[str, Any]:
    """The 202 body of an asynchronous compare: the result follows by callback."""
    return {"statusCode": 202, "apiType": API_TYPE, "transactionId": transaction_id, "status": "accepted"}
