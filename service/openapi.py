"""The OpenAPI 3 description of every endpoint and every error body, served at `GET /openapi.json`."""

from __future__ import annotations

from functools import cache
from importlib import metadata
from typing import Any

from engine.errors import (
    ApiError,
    BadInput,
    BodyTooLarge,
    CallbackRequired,
    Forbidden,
    ImagesRequired,
    InferenceFailed,
    NotReady,
    Unauthorized,
)
from service.middleware import MethodNotAllowed, NotFound
from service.parsing import BodyTimedOut

ERRORS: list[type[ApiError]] = [ImagesRequired, Unauthorized, Forbidden, CallbackRequired, BadInput, BodyTooLarge,
                                InferenceFailed, NotReady, NotFound, MethodNotAllowed, BodyTimedOut]
NUMBER_0_100 = {"type": "number", "minimum": 0, "maximum": 100}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error_response(status: int) -> dict[str, Any]:
    """One status's error response, its description listing every error the contract gives it."""
    rows = [e for e in ERRORS if e.http_status == status]
    description = "; ".join(f"{e.error_code} {e.message}" for e in rows)
    headers = None
    if status == NotReady.http_status:
        headers = {"Retry-After": {"description": "seconds to wait", "required": True,
                                   "schema": {"type": "integer", "minimum": 1}}}
    return _json(_ref("Error"), description, headers)


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/Error{status}"} for status in statuses}


SCHEMAS: dict[str, Any] = {
    "BoundingBox": {
        "type": "object", "nullable": True,
        "description": "Ratios of the upright image (Rekognition semantics); may stray past 0..1 at the edges.",
        "required": ["Width", "Height", "Left", "Top"],
        "properties": {k: {"type": "number"} for k in ("Width", "Height", "Left", "Top")},
    },
    "Pose": {
        "type": "object", "required": ["yaw", "pitch", "roll"],
        "description": "Degrees against the line from the face to the camera, from the 68 landmarks fitted to a "
                       "generic head: an estimate for prompts, not a measurement.",
        "properties": {
            "yaw": {"type": "number", "minimum": -180, "maximum": 180,
                    "description": "> 0: the face turns towards the image's right"},
            "pitch": {"type": "number", "minimum": -90, "maximum": 90, "description": "> 0: the face looks up"},
            "roll": {"type": "number", "minimum": -180, "maximum": 180,
                     "description": "the eye line's slope; > 0: it falls towards the image's right"},
        },
    },
    "FaceQuality": {
        "type": "object", "nullable": True, "required": ["brightness", "sharpness", "pose", "sizePx"],
        "description": "Not in the seed contract (additive). Null when no face is available; absent from "
                       "results stored by versions before it.",
        "properties": {
            "brightness": {**NUMBER_0_100, "description": "mean luma of the aligned inner face"},
            "sharpness": {**NUMBER_0_100, "description": "variance of the Laplacian v of the aligned inner "
                                                         "face as 100 v / (v + 150): 50 at v = 150"},
            "pose": _ref("Pose"),
            "sizePx": {"type": "integer", "minimum": 0,
                       "description": "the face box's width in the pixels of the image as sent"},
        },
    },
    "Face": {
        "type": "object", "required": ["isAvailable", "confidence", "boundingBox"],
        "properties": {"isAvailable": {"type": "boolean"}, "confidence": NUMBER_0_100,
                       "boundingBox": _ref("BoundingBox"), "quality": _ref("FaceQuality")},
    },
    "Liveness": {
        "type": "object", "nullable": True,
        "description": "The target face's liveness, present when checked (livenessCheck or the workspace's "
                       "require-liveness); null without a face. Stored results and callbacks omit the score.",
        "required": ["isLive", "threshold"],
        "properties": {"score": NUMBER_0_100, "isLive": {"type": "boolean"}, "threshold": NUMBER_0_100},
    },
    "FaceMatch": {
        "type": "object",
        "required": ["isAvailable", "confidence", "boundingBox", "similarity", "isMatch", "threshold"],
        "properties": {"isAvailable": {"type": "boolean"}, "confidence": NUMBER_0_100,
                       "boundingBox": _ref("BoundingBox"), "quality": _ref("FaceQuality"),
                       "similarity": NUMBER_0_100, "isMatch": {"type": "boolean"}, "threshold": NUMBER_0_100,
                       "liveness": _ref("Liveness")},
    },
    "CompareResult": {
        "type": "object", "required": ["statusCode", "apiType", "transactionId", "result"],
        "properties": {
            "statusCode": {"type": "integer", "enum": [200]},
            "apiType": {"type": "string", "enum": ["compare_face"]},
            "transactionId": {"type": "string"},
            "result": {"type": "object", "required": ["face", "faceMatch"],
                       "properties": {"face": _ref("Face"), "faceMatch": _ref("FaceMatch")}},
        },
    },
    "Accepted": {
        "type": "object", "required": ["statusCode", "apiType", "transactionId", "status"],
        "properties": {"statusCode": {"type": "integer", "enum": [202]},
                       "apiType": {"type": "string", "enum": ["compare_face"]},
                       "transactionId": {"type": "string"}, "status": {"type": "string", "enum": ["accepted"]}},
    },
    "Error": {
        "type": "object", "required": ["statusCode", "apiType", "transactionId", "errorCode", "message"],
        "properties": {
            "statusCode": {"type": "integer", "enum": sorted({e.http_status for e in ERRORS})},
            "apiType": {"type": "string", "enum": ["compare_face"]},
            "transactionId": {"type": "string"},
            "errorCode": {"type": "integer", "enum": sorted({e.error_code for e in ERRORS})},
            "message": {"type": "string", "description": "the fixed text, optionally ': ' and a short reason"},
        },
    },
    "Pending": {"type": "object", "required": ["status"],
                "properties": {"status": {"type": "string", "enum": ["pending"]}}},
    "StoredResult": {"anyOf": [_ref("CompareResult"), _ref("Error"), _ref("Pending")]},
    "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
    "Info": {
        "type": "object",
        "required": ["version", "backend", "precision", "device", "models", "manifest", "calibration"],
        "properties": {
            "version": {"type": "string"},
            "backend": {"type": "string", "enum": ["onnxruntime", "tensorrt"]},
            "precision": {"type": "string"},
            "device": {"type": "string"},
            "models": {"type": "array", "items": {
                "type": "object", "required": ["name", "role", "family", "sha256", "manifestSha256"],
                "properties": {"name": {"type": "string"}, "role": {"type": "string"}, "family": {"type": "string"},
                               "sha256": {"type": "string", "description": "of the prepared ONNX file"},
                               "manifestSha256": {"type": "string", "description": "of the original, pinned"}}}},
            "manifest": {"type": "object", "required": ["sha256"], "properties": {"sha256": {"type": "string"}}},
            "calibration": {"type": "object", "description": "cosine at each FAR and where it was measured"},
        },
    },
    "CompareJson": {
        "type": "object", "required": ["originFace", "targetFace"],
        "properties": {
            "originFace": {"type": "string", "description": "base64 JPEG/PNG/BMP, optional data: prefix, < 5 MB"},
            "targetFace": {"type": "string", "description": "base64 JPEG/PNG/BMP, optional data: prefix, < 5 MB"},
            "callbackUrl": {"type": "string", "description": "answer 202 now and POST the result here"},
            "threshold": {**NUMBER_0_100, "description": "overrides the workspace's match threshold"},
            "livenessCheck": {"type": "boolean", "description": "report the target face's liveness"},
        },
    },
    "CompareMultipart": {
        "type": "object", "required": ["originFace", "targetFace"],
        "properties": {
            "originFace": {"type": "string", "format": "binary"},
            "targetFace": {"type": "string", "format": "binary"},
            "callbackUrl": {"type": "string"},
            "threshold": {"type": "string", "description": "a number from 0 to 100"},
            "livenessCheck": {"type": "string", "enum": ["true", "false"]},
        },
    },
}

COMPARE_OPERATION = {
    "summary": "Compare the largest face of originFace with the faces of targetFace",
    "security": [{"ApiKey": []}],
    "requestBody": {"required": True, "content": {
        "application/json": {"schema": _ref("CompareJson")},
        "multipart/form-data": {"schema": _ref("CompareMultipart")},
    }},
    "responses": {
        "200": _json(_ref("CompareResult"), "the result (no callbackUrl)"),
        "202": _json(_ref("Accepted"), "accepted; the result follows by callback"),
        **_errors(400, 401, 403, 408, 413, 500, 503),
    },
}


def _plain(description: str, media: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


@cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "facecompare-edge", "version": metadata.version("facecompare-edge"),
                 "description": "On-device face compare, compatible with the ARGOS Identity Face Compare API."},
        "paths": {
            "/modules/compare": {"post": {**COMPARE_OPERATION, "operationId": "compare"}},
            "/v1/compare": {"post": {**COMPARE_OPERATION, "operationId": "compareV1"}},
            "/modules/compare/{transactionId}": {"get": {
                "operationId": "compareResult", "summary": "A stored result, to the workspace that made it, 24 h",
                "security": [{"ApiKey": []}],
                "parameters": [{"name": "transactionId", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": _json(_ref("StoredResult"), "the result, an error body, or pending"),
                              **_errors(401, 403, 404)},
            }},
            "/healthz": {"get": {"operationId": "healthz", "summary": "The process is up",
                                 "responses": {"200": _json(_ref("Status"), "up")}}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "Every model loaded and warmed up",
                                "responses": {"200": _json(_ref("Status"), "ready"), **_errors(503)}}},
            "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus text",
                                 "responses": {"200": _plain("metrics", "text/plain", {"type": "string"})}}},
            "/v1/info": {"get": {"operationId": "info", "summary": "Engine, models, calibration",
                                 "responses": {"200": _json(_ref("Info"), "info"), **_errors(503)}}},
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document",
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3")}}},
            "/": {"get": {"operationId": "demo", "summary": "The demo page",
                          "responses": {"200": _plain("HTML", "text/html", {"type": "string"})}}},
        },
        "components": {
            "schemas": SCHEMAS,
            "responses": {f"Error{status}": _error_response(status)
                          for status in sorted({e.http_status for e in ERRORS})},
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
        },
    }
