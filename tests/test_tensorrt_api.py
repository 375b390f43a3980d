"""The TensorRT names the code touches, read from its source, checked against the one per-version table."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine.backends import trt_api
from engine.backends.trt_api import API, RECEIVERS, SOURCES, SUPPORTED, UnsupportedTensorRT, check_version, series
from tests.gpu import requires_gpu

ROOT = Path(__file__).resolve().parents[1]


def _chain(node: ast.AST) -> list[str] | None:
    """`trt.A.B` -> ['A', 'B']; None when the expression is not rooted at the `trt` module."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "trt":
        return [p for p in reversed(parts) if p != "__init__"]
    return None


def _receiver(node: ast.AST) -> str | None:
    """The TensorRT class of `builder`, `self._engine` and the like, by the naming RECEIVERS fixes."""
    if isinstance(node, ast.Name):
        return RECEIVERS.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return RECEIVERS.get(node.attr.lstrip("_"))
    return None


def _guarded(function: ast.AST) -> bool:
    """Whether a function checks `hasattr(trt, ...)`, i.e. copes with a series that lacks what it uses."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "hasattr"
               and n.args and isinstance(n.args[0], ast.Name) and n.args[0].id == "trt" for n in ast.walk(function))


def used_names(source: str) -> dict[str, bool]:
    """Every TensorRT name in `source` -> whether each use sits in a hasattr-guarded function."""
    tree = ast.parse(source)
    found: dict[str, bool] = {}

    def record(name: str, guarded: bool) -> None:
        found[name] = found.get(name, True) and guarded

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _guarded(node):
            guarded = True
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                chain = _chain(base)
                if chain:
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and item.name != "__init__":
                            record(".".join([*chain, item.name]), guarded)
        if isinstance(node, ast.Attribute):
            chain = _chain(node)
            if chain:
                record(".".join(chain), guarded)
                return
            receiver = _receiver(node.value)
            if receiver:
                record(f"{receiver}.{node.attr}", guarded)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return found


@pytest.fixture(scope="module")
def used() -> dict[str, bool]:
    names: dict[str, bool] = {}
    for source in SOURCES:
        for name, guarded in used_names((ROOT / source).read_text()).items():
            names[name] = names.get(name, True) and guarded
    return names


def test_the_sources_use_tensorrt(used: dict[str, bool]) -> None:
    assert {"Builder.build_serialized_network", "IExecutionContext.execute_async_v3",
            "IExecutionContext.set_tensor_address", "IInt8EntropyCalibrator2.get_batch"} <= set(used)


def test_every_name_used_is_in_the_table(used: dict[str, bool]) -> None:
    assert sorted(set(used) - set(API)) == []


def test_the_table_lists_nothing_unused(used: dict[str, bool]) -> None:
    assert sorted(set(API) - set(used)) == []


@pytest.mark.parametrize("version_series", SUPPORTED)
def test_every_name_exists_in_each_supported_series_or_is_guarded(used: dict[str, bool], version_series: str
                                                                   ) -> None:
    unguarded_missing = [n for n, guarded in used.items() if version_series not in API[n] and not guarded]
    assert unguarded_missing == []


def test_tensorrt_11_lacks_names_the_code_needs_and_the_refusal_names_them(used: dict[str, bool]) -> None:
    missing = [n for n in trt_api.missing_in("11") if not used[n]]
    assert "BuilderFlag.FP16" in missing and "BuilderFlag.INT8" in missing
    with pytest.raises(UnsupportedTensorRT) as refusal:
        check_version("11.4.0.106")
    for name in missing:
        assert name.split(".")[0] in str(refusal.value) or name.split(".")[-1] in str(refusal.value), name
    assert "strongly typed" in str(refusal.value)


@pytest.mark.parametrize(("version", "expected"), [("8.5.2.2", "8.5"), ("8.6.1", "8.6"), ("10.3.0", "10"),
                                                    ("10.13.0.35", "10")])
def test_supported_versions(version: str, expected: str) -> None:
    assert check_version(version) == expected


@pytest.mark.parametrize("version", ["8.4.1", "8.2.1.8", "9.2.0"])
def test_older_versions_are_refused_with_the_reason(version: str) -> None:
    with pytest.raises(UnsupportedTensorRT, match="name-based I/O"):
        check_version(version)


def test_series_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        series("ten")


@pytest.mark.gpu
@requires_gpu
def test_the_installed_tensorrt_has_what_the_table_says() -> None:
    import tensorrt as trt

    version_series = check_version(trt.__version__)
    absent = []
    for name in (n for n, present in API.items() if version_series in present):
        target = trt
        for part in name.split("."):
            if not hasattr(target, part):
                absent.append(name)
                break
            target = getattr(target, part)
    assert absent == []
