"""Each manifest model converted from TFLite (`convert = "tflite"`) against the TFLite runtime on the same
random inputs: the largest difference of every output, so a converter change shows what it moves.

    pip install -e '.[litert]'     # the TFLite runtime
    python -m bench.tflite_parity [--rows 4] [--out bench/results/tflite-parity.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter

from models.manifest import load_manifest
from models.store import prepared_models


def parity(rows: int) -> dict[str, dict[str, float]]:
    """Model -> output -> largest absolute difference over `rows` single-row runs of uniform noise in [-1, 1]."""
    manifest = load_manifest()
    models = prepared_models(manifest)
    report = {}
    for name, spec in manifest.models.items():
        if spec.convert != "tflite":
            continue
        interpreter = Interpreter(model_path=str(models[name].original))
        interpreter.allocate_tensors()
        (given,) = interpreter.get_input_details()
        session = ort.InferenceSession(str(models[name].prepared), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        worst: dict[str, float] = {}
        for _ in range(rows):
            nhwc = rng.uniform(-1, 1, (1, *given["shape"][1:])).astype(np.float32)
            batch = np.repeat(nhwc, given["shape"][0], axis=0)  # a graph with a fixed batch gets it filled
            interpreter.set_tensor(given["index"], batch)
            interpreter.invoke()
            expected = {d["name"]: interpreter.get_tensor(d["index"])[:1] for d in interpreter.get_output_details()}
            names = [o.name for o in session.get_outputs()]
            got = dict(zip(names, session.run(None, {spec.input.name: nhwc.transpose(0, 3, 1, 2)}), strict=True))
            if len(expected) == 1 == len(got):  # a single output the surgery renamed
                got = {next(iter(expected)): next(iter(got.values()))}
            for output, want in expected.items():
                difference = float(np.abs(got[output][:1].reshape(want.shape) - want).max())
                worst[output] = max(worst.get(output, 0.0), difference)
        report[name] = worst
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    text = json.dumps(parity(args.rows), indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
