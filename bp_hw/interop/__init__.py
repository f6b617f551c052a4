"""Models from and to other frameworks through ONNX.

* :mod:`.graph` reads an ONNX file: its constants and the chain of nodes from the input.
* :mod:`.onnx_import` turns an MLP graph (PyTorch, Keras/tf2onnx, scikit-learn/skl2onnx) into a
  :class:`~bp_hw.modelfile.FloatModel`, folding input normalisation into ``norm_mean``/``norm_std``.
* :mod:`.qonnx` reads QONNX ``Quant`` nodes (Brevitas, HGQ) as fixed-point formats and builds the
  integer model (:class:`~bp_hw.fixed.qmodel.QModel`) they describe.
* :mod:`.hls4ml_config` reads an hls4ml configuration's per-layer precision.
* :mod:`.onnx_export` writes a float model as ONNX and an integer model as QONNX or QDQ.

onnx is an optional dependency (the ``onnx`` extra); :func:`.deps.require_onnx` says how to install it.
"""
