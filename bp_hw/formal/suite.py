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
* the board top's link (k-induction, :data:`LINK_INDUCTION`: for all time, bytes arriving in any
  pattern): frames acted on only with the right CRC, and the idle timeout (:mod:`.link_timer`); the
  inference link for an inference build, the training link for a training build; the same for
  every build of its kind, so it is proved behind a one-element network (:func:`link_jobs`,
  ``bp-hw prove --link`` for both without a build).

``depth`` overrides the plan's BMC depths (not the induction lengths, nor the links' depths, which
their frames set). With ``mutants`` each property's broken variant runs as well, expected to fail
with a counterexample trace.
"""

from __future__ import annotations

from ..plan.hardware import HardwarePlan
from . import accumulator, crossing, link, link_timer, network, neuron, training
from .sby import ProofJob

__all__ = ["INDUCTION_DEPTH", "CROSSING_DEPTH", "CROSSING_WIDTH", "LINK_INDUCTION", "LINK_MUTANT_RUNS",
           "TRAIN_LINK_MUTANT_RUNS", "LINK_COVER_DEPTH", "LINK_CUT", "TIMEOUT_MUTANT_RUNS", "TIMEOUT_COVER_DEPTH",
           "build_jobs", "link_jobs", "neuron_jobs"]

STREAM_MARGIN = 8
TRAIN_MARGIN = 50
INDUCTION_DEPTH = 3
CROSSING_DEPTH = 24
#: The crossing is proved with this many payload bits: its control never reads the payload and every
#: payload bit goes through the same register, so the proof holds for every width (wider payloads only
#: slow the solver: 129 bits took more than 20 minutes).
CROSSING_WIDTH = 4
#: The links' induction length: the invariants (:mod:`bp_hw.formal.link`) make the properties inductive
#: at 3 already.
LINK_INDUCTION = 4
#: Each broken link's BMC run: ``(depth, pace, skip)``: the depth is the step where its first bad
#: frame can be acted on (an infer or sample frame's answer is queued at step 22 at the earliest, a
#: load frame's words committed at 38 and a write frame's parameter issued at 34 with a byte every 4
#: cycles) and a margin; ``pace`` (a byte exactly every that many cycles,
#: :class:`~bp_hw.formal.link.LinkFrames`) and ``skip`` (steps not checked, where no bad frame can be
#: acted on yet) keep the long frames' runs in minutes.
LINK_MUTANT_RUNS = {"ignores_crc": (24, None, 0), "loads_ignore_crc": (40, 4, 0)}
TRAIN_LINK_MUTANT_RUNS = {"ignores_crc": (24, 4, 0), "writes_ignore_crc": (36, 4, 30)}
#: The links' covers: a good frame after a refused one is reached at step 42.
LINK_COVER_DEPTH = 48
#: Each broken idle timeout's BMC run ``(depth, skip)`` on the short ticks
#: (:data:`~bp_hw.formal.link_timer.SHORT_TICK_BITS`): a frame given up a tick early is caught at step 51,
#: one never given up at 67 (the timer expires 65 to 80 cycles after the last byte there).
TIMEOUT_MUTANT_RUNS = {"never_gives_up": (70, 60), "early_timeout": (60, 40)}
#: The idle timeout's covers, on the short ticks: the latest expiry is reached at step 81, a cut-off
#: infer frame completed with zeros at 84.
TIMEOUT_COVER_DEPTH = 88
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


def link_jobs(mutants: bool = False, *, train: bool = False) -> list[ProofJob]:
    """The board link's deframer (:class:`~bp_hw.formal.link.LinkFrames`), or with ``train`` the
    training link's (:class:`~bp_hw.formal.link.TrainLinkFrames`), and its idle timeout
    (:class:`~bp_hw.formal.link_timer.LinkTimeout`): k-induction, for all time; the broken links by
    BMC to the step their fault can show; the covers."""
    wrapper, name = (link.TrainLinkFrames, "train-link") if train else (link.LinkFrames, "link")
    what = ("training link: samples offered, parameters written and read only for frames with the right CRC, "
            "with the frame's x, t, train" if train else
            "board link: an answer queued as good only for a frame with the right CRC, its seq, its payload to "
            "the network; load words committed only after a good CRC")
    w = wrapper()
    jobs = [ProofJob(name, "link", w, w.ports, "prove", LINK_INDUCTION, what, "pass", LINK_CUT)]
    if mutants:
        for mutant, (bmc_depth, pace, skip) in (TRAIN_LINK_MUTANT_RUNS if train else LINK_MUTANT_RUNS).items():
            w = wrapper(mutant, pace=pace)
            narrowed = (f"; a byte every {pace} cycles" if pace else "") + (f"; from step {skip}" if skip else "")
            jobs.append(ProofJob(f"{name}-{mutant}", "link", w, w.ports, "bmc", bmc_depth,
                                 what + narrowed, "fail", LINK_CUT, skip))
    jobs += _timeout_jobs(name, train, mutants)
    w = wrapper()
    covers = ("a sample offered from a train frame and from an infer frame, a parameter written, one read" if train
              else "a frame answered as good, one refused, a good one after a refused one, a load word committed")
    jobs.append(ProofJob(f"{name}-covers", "link", w, w.ports, "cover", LINK_COVER_DEPTH, covers, "pass",
                         LINK_CUT))
    return jobs


def _timeout_jobs(name, train, mutants) -> list[ProofJob]:
    """The link's idle timeout (:class:`~bp_hw.formal.link_timer.LinkTimeout`): proved on the board's
    ticks and on the short ones (where the covers and the broken links run)."""
    zeros = "" if train else f"; zeros complete a cut-off infer frame in {link_timer.FLUSH_CYCLES} cycles"

    def what(w):
        return (f"idle timer expires {w.earliest} to {w.latest} cycles after the last byte; every byte wait ends "
                f"then, and only then{zeros}" + (f" (ticks of {1 << w.tick_bits} cycles)" if w.short else ""))

    jobs = []
    for short in (False, True):
        w = link_timer.LinkTimeout(train, short=short)
        jobs.append(ProofJob(f"{name}-timeout" + ("-short" if short else ""), "link", w, w.ports, "prove",
                             LINK_INDUCTION, what(w), "pass", LINK_CUT))
    if mutants:
        for mutant, (depth, skip) in TIMEOUT_MUTANT_RUNS.items():
            w = link_timer.LinkTimeout(train, mutant=mutant)
            jobs.append(ProofJob(f"{name}-timeout-{mutant}", "link", w, w.ports, "bmc", depth,
                                 f"{what(w)}; from step {skip}", "fail", LINK_CUT, skip))
    w = link_timer.LinkTimeout(train, short=True)
    jobs.append(ProofJob(f"{name}-timeout-covers", "link", w, w.ports, "cover", TIMEOUT_COVER_DEPTH,
                         "the timer expiring at the earliest and not yet at the latest cycle, a frame given up"
                         + ("" if train else ", a cut-off frame completed with zeros"), "pass", LINK_CUT))
    return jobs


def build_jobs(plan: HardwarePlan, *, depth: int | None = None, mutants: bool = False,
               board: bool = True) -> list[ProofJob]:
    """The proofs of one build's plan (inference or training), and with ``board`` of its board top:
    the crossing and the link (the same for every build of the kind)."""
    if depth is not None and depth < 1:
        raise ValueError("depth must be at least 1")
    board = (_crossing_jobs(plan, depth, mutants) + link_jobs(mutants, train=plan.training is not None)
             if board else [])
    if plan.training is not None:
        return _training_jobs(plan, depth, mutants) + board
    return _inference_jobs(plan, depth, mutants) + board


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
