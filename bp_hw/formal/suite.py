"""The proofs of a build, and of the small-layer neuron cases, as lists of :class:`~.sby.ProofJob`.

Depths come from the plan, so that each proof covers a stated stretch of the design's life:

* stream and latency (BMC): ``plan.standalone_latency + STREAM_MARGIN`` cycles from reset: the
  first vector in and out under any stall pattern, and the samples that follow it as far as that;
* accumulator (k-induction, :data:`INDUCTION_DEPTH`): for all time;
* training writes (BMC): ``plan.training.infer_cycles + TRAIN_MARGIN``: the first sample's forward
  pass and its backward passes as far as the last layer's first update writes, with access writes anywhere (a whole training sample,
  ``train_cycles``, is out of the solver's reach on iris: past about 125 steps every step costs
  minutes; ``depth`` asks for more);
* neuron (BMC): ``standalone_latency + interval + 1``: the first two samples' outputs;
* the board top's clock-domain crossing (BMC, :data:`CROSSING_DEPTH` steps of any interleaving of
  the two clocks' edges: at least three transfers), at :data:`CROSSING_WIDTH` payload bits.
* the board link's deframer (BMC, :data:`LINK_DEPTH` cycles of bytes arriving in any pattern: the
  first answer to a frame can be queued from step 22, so the depth covers every way the first frame
  can arrive within 28 cycles; each step past that doubles the solver's time): the same link serves
  every build, so it is proved once, behind a one-element network (:func:`link_jobs`, ``bp-hw prove --link``).

``depth`` overrides every BMC depth (not the induction length). With ``mutants`` each property's
broken variant runs as well, expected to fail with a counterexample trace.
"""

from __future__ import annotations

from ..plan.hardware import HardwarePlan
from . import accumulator, crossing, link, network, neuron, training
from .sby import ProofJob

__all__ = ["INDUCTION_DEPTH", "CROSSING_DEPTH", "CROSSING_WIDTH", "LINK_DEPTH", "LINK_COVER_DEPTH", "LINK_CUT",
           "build_jobs", "link_jobs", "neuron_jobs"]

STREAM_MARGIN = 8
TRAIN_MARGIN = 50
INDUCTION_DEPTH = 3
CROSSING_DEPTH = 24
#: The crossing is proved with this many payload bits: its control never reads the payload and every
#: payload bit goes through the same register, so the proof holds for every width (wider payloads only
#: slow the solver: 129 bits took more than 20 minutes).
CROSSING_WIDTH = 4
LINK_DEPTH = 28
#: The link's covers: a good frame after a refused one is reached at step 42.
LINK_COVER_DEPTH = 48
#: The link's UART transmitter, whose outputs become free values (the answers' bytes and their CRC
#: leave the proof: the properties are about what the deframer queues and hands the network).
LINK_CUT = ("top.link/c:tx*",)


def _inference_jobs(plan: HardwarePlan, depth, mutants) -> list[ProofJob]:
    d = depth or plan.standalone_latency + STREAM_MARGIN
    cut = network.CUT
    jobs = []
    for mutant in [None] + (["forgets_payload", "duplicates"] if mutants else []):
        w = network.NetworkStreams(plan, mutant=mutant)
        jobs.append(ProofJob("stream" + (f"-{mutant}" if mutant else ""), "stream", w, w.ports, "bmc", d,
                             "o holds while stalled; outputs <= inputs", "fail" if mutant else "pass", cut))
    w = network.NetworkStreams(plan)
    jobs.append(ProofJob("stream-covers", "stream", w, w.ports, "cover", d,
                         "a transfer, a stalled output taken, a stalled input", "pass", cut))
    for mutant in [None] + (["short_latency"] if mutants else []):
        w = network.NetworkStreams(plan, latency=True, mutant=mutant)
        jobs.append(ProofJob("latency" + (f"-{mutant}" if mutant else ""), "latency", w, w.ports, "bmc", d,
                             f"o.ready high: an input into an empty network out within {plan.latency - (mutant is not None)} cycles",
                             "fail" if mutant else "pass", cut))
    for lp in plan.layers:
        for mutant in [None] + (["no_guard_bits"] if mutants and lp.index == 0 else []):
            w = accumulator.AccumulatorRange(lp, mutant)
            jobs.append(ProofJob(f"accumulator{lp.index}" + (f"-{mutant}" if mutant else ""), "accumulator", w,
                                 w.ports, "prove", INDUCTION_DEPTH,
                                 f"fan-in {lp.layer.fan_in}, P_in {lp.fold.lanes_in}: sum inside "
                                 f"signed({w.acc_width})", "fail" if mutant else "pass"))
    return jobs


def _training_jobs(plan: HardwarePlan, depth, mutants) -> list[ProofJob]:
    d = depth or plan.training.infer_cycles + TRAIN_MARGIN
    jobs = []
    for mutant in [None] + (["neighbour_window"] if mutants else []):
        w = training.TrainWrites(plan, mutant)
        jobs.append(ProofJob("writes" + (f"-{mutant}" if mutant else ""), "training", w, w.ports, "bmc", d,
                             "RAMs written only in their layer's update or by an access write",
                             "fail" if mutant else "pass", training.CUT))
    w = training.TrainWrites(plan)
    jobs.append(ProofJob("writes-covers", "training", w, w.ports, "cover", d,
                         "an update write, an access write, an output", "pass", training.CUT))
    return jobs


def _crossing_jobs(plan: HardwarePlan, depth, mutants) -> list[ProofJob]:
    d = depth or CROSSING_DEPTH
    width = CROSSING_WIDTH
    jobs = []
    for mutant in [None] + (["acknowledge_on_sight"] if mutants else []):
        w = crossing.CrossingStreams(width, mutant=mutant)
        jobs.append(ProofJob("crossing" + (f"-{mutant}" if mutant else ""), "crossing", w, w.ports, "bmc", d,
                             "board top's clock crossing, any two clocks: o holds; none lost, duplicated, "
                             "reordered", "fail" if mutant else "pass"))
    w = crossing.CrossingStreams(width)
    jobs.append(ProofJob("crossing-covers", "crossing", w, w.ports, "cover", d,
                         "a third transfer, a stalled output taken, a stalled input", "pass"))
    return jobs


def link_jobs(depth=None, mutants: bool = False) -> list[ProofJob]:
    """The board link's deframer (:class:`~bp_hw.formal.link.LinkFrames`)."""
    jobs = []
    for mutant in [None] + (["ignores_crc"] if mutants else []):
        w = link.LinkFrames(mutant)
        jobs.append(ProofJob("link" + (f"-{mutant}" if mutant else ""), "link", w, w.ports, "bmc", depth or LINK_DEPTH,
                             "board link: an answer queued as good only for a frame with the right CRC, "
                             "its seq, its payload to the network", "fail" if mutant else "pass", LINK_CUT))
    w = link.LinkFrames()
    jobs.append(ProofJob("link-covers", "link", w, w.ports, "cover", depth or LINK_COVER_DEPTH,
                         "a frame answered as good, one refused, a good one after a refused one", "pass", LINK_CUT))
    return jobs


def build_jobs(plan: HardwarePlan, *, depth: int | None = None, mutants: bool = False) -> list[ProofJob]:
    """The proofs of one build's plan (inference or training), and of its board top's crossing."""
    if depth is not None and depth < 1:
        raise ValueError("depth must be at least 1")
    if plan.training is not None:
        return _training_jobs(plan, depth, mutants) + _crossing_jobs(plan, depth, mutants)
    return _inference_jobs(plan, depth, mutants) + _crossing_jobs(plan, depth, mutants)


def neuron_jobs(cases=neuron.CASES, *, depth: int | None = None, mutants: bool = False) -> list[ProofJob]:
    """The symbolic-neuron proofs of ``cases`` (:data:`bp_hw.formal.neuron.CASES` by default)."""
    jobs = []
    for k, case in enumerate(cases):
        q = neuron.neuron_model(*case)
        for mutant in [None] + (["other_rounding"] if mutants and k == 0 else []):
            w = neuron.NeuronSpec(q, mutant=mutant)
            d = depth or w.plan.standalone_latency + w.plan.interval + 1
            name = "neuron-" + "-".join(case).replace(".", "_") + (f"-{mutant}" if mutant else "")
            jobs.append(ProofJob(name, "neuron", w, w.ports, "bmc", d,
                                 f"{neuron.FAN_IN}-{neuron.FAN_OUT} {case[0]} in, {case[1]}, {case[2]}, {case[3]}: "
                                 "= the integer model", "fail" if mutant else "pass"))
    return jobs
