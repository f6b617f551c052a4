"""Design-space exploration: formats x LUT size x parallelism x boards x placement seeds for one model.

Each (format, LUT size) is quantized once with
:func:`~bp_hw.fixed.quantizer.quantize_model`; its accuracy comes from the
integer model on the model's own test split. Each design is then *run*: its
cycles from the hardware plan (:func:`bp_hw.plan.make_plan`) and its
resources from the fast estimate (:mod:`bp_hw.synth_estimate`) on the
board's device, or, with synthesis, from yosys + nextpnr at each placement
seed (Fmax as median and range over the seeds).

The pieces:

* :mod:`.points` - designs, quantization, the :class:`Point` of a design;
* :mod:`.cache` - content-hash keys of the runs and the result folder;
* :mod:`.engine` - the point function and the engines (this process, a local
  process pool, Dask distributed);
* :mod:`.pareto` - seeds folded into a design's figures, the Pareto front;
* :mod:`.sweep` - :func:`explore`, which ties them together and writes
  ``explore.json``, ``explore.csv`` and ``explore.png``.

A point is on the Pareto front when it fits, and no other point that fits is
at least as good in accuracy, LUTs and throughput and better in one of them.
"""

from .cache import ResultCache, run_key, tool_versions
from .engine import DaskEngine, PoolEngine, SerialEngine, make_engine, run_point
from .pareto import best_point, fold_runs, pareto_front
from .plot import plot
from .points import (DEFAULT_FORMATS, Design, Point, format_table, load_source, parse_list, parse_seeds,
                     quant_config_for, quantize_design)
from .sweep import EXPLORE_FOLDER, Progress, evaluate, explore

__all__ = ["DEFAULT_FORMATS", "Design", "Point", "quant_config_for", "load_source", "quantize_design", "evaluate",
           "pareto_front", "fold_runs", "best_point", "plot", "explore", "format_table", "parse_list",
           "parse_seeds", "Progress", "EXPLORE_FOLDER", "ResultCache", "run_key", "tool_versions", "run_point",
           "make_engine", "SerialEngine", "PoolEngine", "DaskEngine"]
