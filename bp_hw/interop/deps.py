"""The optional ONNX packages: imported on demand, with a one-line install hint when missing."""

from __future__ import annotations

import importlib

from ..errors import BpHwError

INSTALL_HINT = 'pip install -e ".[onnx]"'


def _require(module: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise BpHwError(f"{what} needs the optional package {module.split('.')[0]}: {INSTALL_HINT}") from None


def require_onnx(what: str = "ONNX import and export"):
    """The ``onnx`` module, or a :class:`BpHwError` saying how to install it."""
    return _require("onnx", what)


def require_onnxruntime(what: str = "running an ONNX model"):
    return _require("onnxruntime", what)
