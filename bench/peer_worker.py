"""Runs inside the peer's own virtual environment (face_recognition + dlib), never in ours: it imports
nothing of this project. One JSON request a line on stdin, one JSON answer a line on stdout:

    {"op": "compare", "origin": PATH, "target": PATH} -> {"ms": .., "cpu_ms": .., "distance": .. or null}
    {"op": "encode", "path": PATH} -> {"ms": .., "cpu_ms": .., "encodings": [[128 floats], ...]}  (largest first)

A compare is what a face_recognition user writes with the library's defaults: load both images, find the
faces (HOG, one upsampling), encode them, and take the distance of the origin's largest face to the
nearest face of the target.
"""

from __future__ import annotations

import json
import sys
import time

import face_recognition


def encodings(path: str) -> list:
    image = face_recognition.load_image_file(path)
    locations = face_recognition.face_locations(image)
    locations.sort(key=lambda box: (box[2] - box[0]) * (box[1] - box[3]), reverse=True)
    return face_recognition.face_encodings(image, locations)


def compare(origin: str, target: str) -> float | None:
    probe, candidates = encodings(origin), encodings(target)
    if not probe or not candidates:
        return None
    return float(face_recognition.face_distance(candidates, probe[0]).min())


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        started, cpu = time.perf_counter(), time.process_time()
        if request["op"] == "compare":
            answer = {"distance": compare(request["origin"], request["target"])}
        else:
            answer = {"encodings": [e.tolist() for e in encodings(request["path"])]}
        answer["ms"] = (time.perf_counter() - started) * 1000
        answer["cpu_ms"] = (time.process_time() - cpu) * 1000
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
