"""The hardware plan: what to build for a quantized model, as numbers, with no gates.

:func:`make_plan` takes a :class:`~bp_hw.fixed.qmodel.QModel`, the parallelism
``P`` per layer, optionally a target device and the on-chip training settings,
and computes per layer the folding, the memories (their words packed by
:mod:`bp_hw.fixed.packing`, where each one lives), the lookup-table constants,
every width, the LFSR seeds and the latency and interval; for the network the
stream ports and their beat layout, the latency and interval. The HDL
components take a plan and build gates; ``explore``, the fast estimate,
co-simulation, synthesis and the host read the plan (or the manifest written
from it) and never build a component to learn a number.

Cycle counts are facts of the hardware's schedule, stated here once; the
components' docstrings describe the stages, and the tests measure each count
in simulation against the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BpHwError
from ..fixed.folding import Folding, parse_lanes
from ..fixed.lfsr import lane_seed
from ..fixed.lut import LUT_FUNCTIONS
from ..fixed.packing import lane_bias_words, lane_weight_words
from ..fixed.qformat import QFormat
from ..fixed.qmodel import QLayer, QModel, signed_width
from ..fixed.trainer import LayerTrainFormats, TrainSpec, layer_formats, spec_dict, target_format
from .boards import Device, device as lookup_device

__all__ = ["PRODUCT_LATENCY", "MAC_LATENCY", "LOGIC_PRODUCT_LATENCY", "LANE_SUM_LATENCY",
           "DSP_CELL_RETIME_LATENCY", "product_latency", "mac_latency", "slot_stride", "REGISTER_SLOT_CHUNKS", "SLOW_BRAM_FAMILIES", "DSP_CELL_OF_FAMILY", "RESCALE_LATENCY", "LAYER_PIPELINE", "TRAIN_FWD_TAIL",
           "TRAIN_ERR_TAIL", "TRAIN_UPD_TAIL", "train_upd_tail", "TRAIN_DELTA_TAIL", "TRAIN_ISSUE_DELAY", "ACCESS_READ_LATENCY", "activation_latency",
           "parse_parallel", "train_spec_of", "INPUT_VECTOR_BITS", "INPUT_MODES", "input_mode_of", "WEIGHT_PLACEMENTS", "dsps_per_multiplier", "AUTO_LOGIC_BITS", "LoadedMemory", "LoadPlan", "Field", "PayloadFields", "StreamLayout", "MemoryPlan", "LutPlan", "LayerPlan",
           "TrainLayerPlan", "TrainPlan", "HardwarePlan", "make_plan"]

#: Enabled cycles of the product stage (operand registers, product register) and of the
#: accumulator (split accumulation, carry resolution): a MAC lane is the two in a row.
PRODUCT_LATENCY = 2
MAC_LATENCY = PRODUCT_LATENCY + 2
#: A product built in LUTs (a shift-add tree) has one more register, halfway down its adder tree.
LOGIC_PRODUCT_LATENCY = PRODUCT_LATENCY + 1
#: An inference MAC lane with ``P_in > 1`` products registers their sum before the accumulator.
LANE_SUM_LATENCY = 1
#: The rescale stage: rounding decision, add, saturate.
RESCALE_LATENCY = 3
#: Inference layer pipeline from the last issue to the output slot, activation excluded:
#: ROM read, the MAC lane, the rescale, slot.
LAYER_PIPELINE = 1 + MAC_LATENCY + RESCALE_LATENCY + 1
#: Training layer, last issue to the done pulse of each pass (the FWD tail adds the activation);
#: a pass issues its first word TRAIN_ISSUE_DELAY cycles after its start pulse. FWD and ERR: RAM read, the
#: product stage and an accumulator (the MAC lane's), the rescale, result register; UPD: RAM
#: read, the product stage, update rounding, subtract, saturate, write-back; the delta unit: its
#: last neuron to done.
TRAIN_FWD_TAIL = 1 + MAC_LATENCY + RESCALE_LATENCY + 1
TRAIN_ERR_TAIL = 1 + MAC_LATENCY + RESCALE_LATENCY + 1


def train_upd_tail(batch: int = 1, product: int = PRODUCT_LATENCY) -> int:
    """UPD, last issue to ``upd_done``: RAM read, the product stage (``product`` cycles), (mini-batch:
    the sum), the rounding split, subtract, the second subtract with the clamp decisions, the write
    request, write-back."""
    return 1 + product + (batch > 1) + 1 + 1 + 1 + 1 + 1


TRAIN_UPD_TAIL = train_upd_tail(1)
TRAIN_DELTA_TAIL = 11         # + 1 when eta_int != 1; + 2 per extra product cycle (products in logic)
TRAIN_ISSUE_DELAY = 1
#: Training access port: address presented to read data.
ACCESS_READ_LATENCY = 5


#: A product from an instantiated DSP cell (:data:`DSP_CELL_OF_FAMILY`) is registered once more in the
#: fabric: the ECP5's DSP blocks sit in rows across the die, far from the lane logic, and the route
#: from a block's product register to the lane sum took 5.6 ns of a 8.3 ns cycle (94 MHz, MNIST
#: 784-64-10 at 16x4 on the ECP5-85F); with this register the route has a cycle of its own.
DSP_CELL_RETIME_LATENCY = 1


def product_latency(in_logic: bool, cell: str | None = None) -> int:
    """Enabled cycles of a product stage: :data:`PRODUCT_LATENCY` on DSP blocks (plus
    :data:`DSP_CELL_RETIME_LATENCY` for an instantiated DSP ``cell``), :data:`LOGIC_PRODUCT_LATENCY`
    with the products in LUTs."""
    if in_logic:
        return LOGIC_PRODUCT_LATENCY
    return PRODUCT_LATENCY + (DSP_CELL_RETIME_LATENCY if cell is not None else 0)


def mac_latency(in_logic: bool, lanes_in: int, cell: str | None = None) -> int:
    """Enabled cycles of an inference MAC lane (:class:`~bp_hw.hdl.mac.MACLane`): its product stage
    (:func:`product_latency`), the registered sum of its products when there are several, the
    accumulator's 2."""
    return product_latency(in_logic, cell) + (LANE_SUM_LATENCY if lanes_in > 1 else 0) + MAC_LATENCY - PRODUCT_LATENCY


def activation_latency(layer: QLayer) -> int:
    """Enabled cycles of the activation unit: 1 for ReLU/identity, 2 for a direct LUT, 3 interpolated."""
    lut = layer.lut
    return 1 if lut is None else (3 if lut.interpolate else 2)


def parse_parallel(spec, n_layers: int) -> list:
    """``1``, ``"4"``, ``"8,3"`` or ``"4x2,5"`` -> one P per layer (a single value applies to every
    layer); an entry is an int or ``"OxI"`` (``P_out`` x ``P_in``, see :class:`Folding`)."""
    if isinstance(spec, int):
        values = [spec]
    else:
        tokens = [str(v).strip() for v in spec] if isinstance(spec, (list, tuple)) else \
            [v.strip() for v in str(spec).split(",") if v.strip()]
        values = []
        for tok in tokens:
            if "x" in tok.lower():
                p_out, p_in = parse_lanes(tok)
                values.append(f"{p_out}x{p_in}")
                continue
            try:
                values.append(int(tok))
            except ValueError:
                raise BpHwError(f"--parallel takes P or OxI values separated by commas (e.g. 8,3 or "
                                f"4x2,5), got {spec!r}") from None
    if len(values) == 1:
        values = values * n_layers
    if len(values) != n_layers:
        raise BpHwError(f"--parallel lists {len(values)} values but the network has {n_layers} layers")
    return values


def train_spec_of(spec) -> TrainSpec:
    """A :class:`TrainSpec` from a TrainSpec, ``None`` (the defaults) or a ``spec_dict()``-style dict."""
    if spec is None:
        return TrainSpec()
    if isinstance(spec, TrainSpec):
        return spec
    d = dict(spec)
    for derived in ("eta_int", "eta_frac", "layers"):
        d.pop(derived, None)
    return TrainSpec.from_dict(d)


# -- streams --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One field of a stream payload: ``elements`` integers of ``width`` bits from bit ``offset``.

    Element ``k`` sits in bits ``[offset + k * width, offset + (k + 1) * width)``;
    ``fmt`` is ``None`` for a plain flag (the training mode bit).
    """

    name: str
    offset: int
    elements: int
    width: int
    signed: bool
    fmt: str | None = None
    meaning: str = ""

    @property
    def bits(self) -> int:
        return self.elements * self.width


class PayloadFields:
    """What a stream's payload is made of; shared by the plan's layouts and the manifest's ports.

    A vector travels as ``beats`` consecutive transfers (beats) of one payload each; its
    element ``k`` is element ``k % elements`` of beat ``k // elements``. The end of a vector
    is marked by the count: every vector has exactly ``beats`` beats.
    """

    fields: tuple[Field, ...]
    beats: int

    @property
    def payload_width(self) -> int:
        return sum(f.bits for f in self.fields)

    @property
    def vector(self) -> Field | None:
        """The single array field of a plain vector stream (inference in/out, taps); else None."""
        return self.fields[0] if len(self.fields) == 1 else None

    @property
    def vector_elements(self) -> int | None:
        """Elements of one whole vector: ``beats`` beats of the field's ``elements`` each."""
        return self.vector.elements * self.beats if self.vector else None


@dataclass(frozen=True)
class StreamLayout(PayloadFields):
    """A valid/ready stream: port names and the payload's fields (one payload per beat)."""

    prefix: str                 # "i" -> i__payload, i__valid, i__ready
    fields: tuple[Field, ...]
    ready: bool = True
    beats: int = 1


def _vector_stream(prefix: str, name: str, elements: int, fmt: QFormat, ready: bool = True,
                   beats: int = 1) -> StreamLayout:
    return StreamLayout(prefix, (Field(name, 0, elements, fmt.width, fmt.signed, fmt.name),), ready, beats)


# -- memories and lookup tables --------------------------------------------------------------

@dataclass(frozen=True)
class MemoryPlan:
    """``count`` identical-shape memories (one per lane) of ``depth`` words of ``width`` bits.

    ``placement``: ``"block"`` (block RAM: EBR), ``"spram"`` (iCE40UP single-port
    SPRAM), ``"logic"`` (LUTs/flip-flops), ``"auto"`` (left to the tools: yosys keeps
    small ROMs in logic) or ``"const"`` (a single word: no memory at all).
    ``loaded``: the contents arrive at run time through the network's load port
    (SPRAM has no initial contents); else they are in the bitstream.
    """

    name: str
    layer: int
    kind: str                  # weights | biases | lut | slots | buffer | grad_sums
    count: int
    depth: int
    width: int
    placement: str
    writable: bool = False
    elements_per_word: int = 1
    loaded: bool = False

    @property
    def bits(self) -> int:
        return self.count * self.depth * self.width


@dataclass(frozen=True)
class LutPlan:
    """The activation ROM of a sigmoid/tanh layer and the constants its address logic is built from
    (all read from :class:`~bp_hw.fixed.lut.ActivationLUT`)."""

    function: str
    addr_bits: int
    in_range: float
    symmetric: bool
    interpolate: bool
    index_shift: int
    index_offset: int
    index_max: int
    interp_z_min: int | None            # interpolation only
    interp_z_max: int | None
    mirror_constant: int
    rom_words: tuple[int, ...] = field(repr=False)   # unsigned words in address order

    @property
    def rom_depth(self) -> int:
        return len(self.rom_words)


def _lut_plan(layer: QLayer) -> LutPlan | None:
    lut = layer.lut
    if lut is None:
        return None
    mask = (1 << layer.out_fmt.width) - 1
    interp = (lut.interp_z_min, lut.interp_z_max) if lut.interpolate else (None, None)
    return LutPlan(lut.function, lut.addr_bits, lut.in_range, lut.symmetric, lut.interpolate, lut.index_shift,
                   lut.index_offset, lut.index_max, *interp, lut.mirror_constant,
                   tuple(int(v) & mask for v in lut.rom_table))


# -- layers -------------------------------------------------------------------------------------

@dataclass
class LayerPlan:
    """One layer of the inference datapath (:class:`~bp_hw.hdl.layer.LayerEngine`)."""

    index: int
    layer: QLayer = field(repr=False)
    fold: Folding
    input_source: str          # "payload": read in place from the input stream; "bram": the slots
                               # before; "buffer": the network's input buffer (beats written to block RAM)
    output_slots: str          # "registers" (ping-pong vectors) or "bram" (ping-pong words)
    lut: LutPlan | None
    activation_latency: int
    memories: list[MemoryPlan]
    monitor: bool = False      # a verification-only copy of the output vector (taps of BRAM slots)
    logic_multipliers: bool = False   # products in LUTs: the device has no DSP blocks left for this layer
    in_word_chunks: int = 1    # "bram": input chunks per word of the producer's slots (its P_out / this P_in)
    operand_latency: int = 0   # registers between the memories and the MAC lanes (SLOW_BRAM_FAMILIES: 1)
    dsp_cell: str | None = None   # the DSP primitive instantiated per product, with its own registers
                                  # (DSP_CELL_OF_FAMILY); None: synthesis infers the multipliers

    @property
    def fan_in(self) -> int:
        return self.layer.fan_in

    @property
    def fan_out(self) -> int:
        return self.layer.fan_out

    @property
    def interval(self) -> int:
        """Cycles between samples: ``groups * chunks = MACs / P``."""
        return self.fold.cycles

    @property
    def mac_latency(self) -> int:
        """The MAC lane's enabled cycles (:func:`mac_latency`)."""
        return mac_latency(self.logic_multipliers, self.fold.lanes_in, self.dsp_cell)

    @property
    def word_latency(self) -> int:
        """1 where the layer picks its chunk out of a wider word of the producer's slot RAM
        (:attr:`in_word_chunks` > 1): the word read is registered before the pick, so that no logic
        follows a block RAM's (slow) output in the same cycle; else 0."""
        return int(self.input_source == "bram" and self.in_word_chunks > 1)

    @property
    def latency(self) -> int:
        """This layer's input transfer (its last chunk) to its output transfer: ROM read (and
        :attr:`word_latency`, :attr:`operand_latency`), the MAC
        lane, the rescale, the activation, the output slot (:data:`LAYER_PIPELINE` + the activation's
        cycles with one product per lane on a DSP block; one more with the products in logic or from
        an instantiated DSP cell, :attr:`dsp_cell`; one more with several products per lane)."""
        return 1 + self.word_latency + self.operand_latency + self.mac_latency + RESCALE_LATENCY + 1 \
            + self.activation_latency

    @property
    def multipliers(self) -> int:
        return self.fold.lanes

    def dsps(self, dev: Device) -> int:
        """DSP blocks the layer's multipliers take on ``dev`` (0 with its products in logic)."""
        if self.logic_multipliers:
            return 0
        return self.fold.lanes * dsps_per_multiplier(self.layer.weight_fmt.width, self.layer.in_fmt.width
                                                     + (not self.layer.in_fmt.signed), dev)

    @property
    def in_groups(self) -> int | None:
        """Words of the input slots when read from BRAM (the producer's neuron groups = this layer's
        chunks / :attr:`in_word_chunks`), or of the input buffer (its chunks)."""
        return self.fold.chunks // self.in_word_chunks if self.input_source != "payload" else None

    def weight_words(self, lane: int) -> list[int]:
        return lane_weight_words(self.layer, self.fold, lane)

    def bias_words(self, lane: int) -> list[int]:
        return lane_bias_words(self.layer, self.fold, lane)


WEIGHT_PLACEMENTS = ("auto", "rom", "block", "logic", "spram")


#: Families whose block RAM output comes late in the cycle (ECP5's DP16KD without its output
#: register, which yosys does not infer: about 5.6 ns clock-to-out at speed grade 6, most of a
#: 120 MHz cycle): every MAC operand is registered once more next to its memory.
SLOW_BRAM_FAMILIES = ("ecp5",)

#: Families whose DSP blocks the generator instantiates, with the block's own operand and product
#: registers as the product stage's two (yosys maps a product onto ECP5's MULT18X18D but leaves the
#: registers in the fabric, and nextpnr then places them far from the block: 73.6 MHz for MNIST
#: 784-64-10 at 16x4 on the ECP5-85F). Only where one product takes one block.
DSP_CELL_OF_FAMILY = {"ecp5": "MULT18X18D"}

#: A layer reads register slots through a ``chunks``:1 multiplexer; past this many chunks the
#: multiplexer is too slow and too big, so the slots go to block RAM where the word shapes allow.
REGISTER_SLOT_CHUNKS = 8


def _slots_in_bram(up: Folding, down: Folding) -> bool:
    """Whether the slots between two layers live in block RAM (read a word per cycle) rather than in
    registers (read through a multiplexer). Where the producer's word (``P_out`` neurons) is the
    consumer's chunk (``P_in`` inputs), e.g. every P = 1 boundary; and where a word is several whole
    chunks (the consumer reads a word and picks its chunk, e.g. 4x2 -> 1) if the consumer reads more
    than :data:`REGISTER_SLOT_CHUNKS` chunks (fewer: a few registers cost less than block RAMs)."""
    if up.lanes_out == down.lanes_in:
        return True
    return up.lanes_out % down.lanes_in == 0 and down.chunks > REGISTER_SLOT_CHUNKS


def slot_stride(words: int) -> int:
    """Words from one ping-pong slot to the next in a slot RAM or the input buffer: ``words``
    rounded up to a power of two, so that a word's address is the slot bit above the word index
    (no adder in front of the RAM)."""
    return 1 << max(words - 1, 0).bit_length()


def _inference_memories(index: int, layer: QLayer, fold: Folding, lut: LutPlan | None, out_bram: bool,
                        weights: str) -> list[MemoryPlan]:
    """The layer's memories; ``weights``: ``rom`` (block RAM, or a constant for a single word),
    ``block``/``logic`` (forced) or ``spram`` (loaded at run time)."""
    single = fold.cycles == 1
    w_place = "const" if single else {"rom": "block"}.get(weights, weights)
    mems = [
        MemoryPlan(f"layer{index}.weights", index, "weights", fold.lanes_out, fold.cycles,
                   fold.lanes_in * layer.weight_fmt.width, w_place, w_place == "spram", fold.lanes_in,
                   loaded=w_place == "spram"),
        # a few bias words must not take a whole block RAM each
        MemoryPlan(f"layer{index}.biases", index, "biases", fold.lanes_out, fold.groups, layer.bias_fmt.width,
                   "logic" if fold.groups > 1 else "const"),
    ]
    if out_bram:
        mems.append(MemoryPlan(f"layer{index}.slots", index, "slots", 1, 2 * slot_stride(fold.groups),
                               fold.lanes_out * layer.out_fmt.width, "block", True, fold.lanes_out))
    if lut is not None:
        mems.append(MemoryPlan(f"layer{index}.lut", index, "lut", fold.lanes_out, lut.rom_depth,
                               layer.out_fmt.width, "auto"))
    return mems


def dsps_per_multiplier(a_bits: int, b_bits: int, dev: Device) -> int:
    """DSP blocks one signed ``a_bits x b_bits`` multiplier takes on ``dev``."""
    return -(-a_bits // dev.dsp_a_bits) * -(-b_bits // dev.dsp_b_bits)


def _ebr_blocks(mems: list[MemoryPlan], dev: Device) -> int:
    """Block RAMs the memories would take (an ``auto`` memory counts when it is big enough for yosys
    to put it in block RAM, as the estimate says)."""
    return sum(m.count * dev.bram_blocks(m.depth, m.width) for m in mems
               if m.placement == "block" or (m.placement == "auto" and m.depth * m.width > AUTO_LOGIC_BITS))


def _check_spram(layers: list[QLayer], folds: list[Folding], spram_layers, dev: Device | None) -> None:
    """Refuse SPRAM weights for ``spram_layers`` unless ``dev`` has SPRAM blocks enough for them."""
    if dev is None or not dev.sprams:
        raise BpHwError("--weights spram needs a device with SPRAM (iCE40UP5K: --board icebreaker)")
    need = sum(folds[l].lanes_out * dev.spram_blocks(folds[l].cycles, folds[l].lanes_in * layers[l].weight_fmt.width)
               for l in spram_layers if folds[l].cycles > 1)
    if need > dev.sprams:
        raise BpHwError(f"the weights need {need} SPRAM blocks ({dev.spram_shape[0]} x {dev.spram_shape[1]} "
                        f"each, one lane memory per block or more), {dev.name} has {dev.sprams}: fewer output "
                        f"lanes (P_out), narrower weights (8 bits: two per 16-bit word) or --weights auto")


def _weight_placements(layers: list[QLayer], folds: list[Folding], luts, out_brams, weights: str,
                       dev: Device | None) -> list[str]:
    """Where each layer's weights go. ``auto``: ROMs in block RAM while they fit the device; on a
    device with SPRAM the largest layers' weights move there (loaded at run time) until the block
    RAMs fit or the SPRAM is used up."""
    n = len(layers)
    if weights not in WEIGHT_PLACEMENTS:
        raise BpHwError(f"weight memory {weights!r}: use one of {', '.join(WEIGHT_PLACEMENTS)}")
    if weights == "spram":
        _check_spram(layers, folds, range(n), dev)
    if weights != "auto":
        return [weights] * n
    places = ["rom"] * n
    if dev is None or not dev.sprams:
        return places

    def ebr(places):
        return sum(_ebr_blocks(_inference_memories(l, L, f, lut, ob, w), dev)
                   for l, (L, f, lut, ob, w) in enumerate(zip(layers, folds, luts, out_brams, places)))

    sprams = 0
    order = sorted(range(n), key=lambda l: -layers[l].macs * layers[l].weight_fmt.width)
    for l in order:
        if ebr(places) <= dev.brams:
            break
        f = folds[l]
        need = f.lanes_out * dev.spram_blocks(f.cycles, f.lanes_in * layers[l].weight_fmt.width)
        if f.cycles > 1 and sprams + need <= dev.sprams:
            places[l] = "spram"
            sprams += need
    return places


@dataclass(frozen=True)
class LoadedMemory:
    """One lane memory written through the load port: words ``index << word_bits | k``."""

    name: str
    layer: int
    lane: int
    index: int
    depth: int
    width: int


@dataclass(frozen=True)
class LoadPlan:
    """The network's load port (``ld``): the memories whose contents arrive at run time.

    One transfer writes one packed word: ``data`` (the low ``data_width`` bits of the payload) at
    ``addr`` (the bits above): memory ``addr >> word_bits`` of :attr:`memories`, word
    ``addr & (2**word_bits - 1)``, laid out as :mod:`bp_hw.fixed.packing` says. The port is always
    ready; load while no sample is in flight (the memories are single-port: a write takes the read's
    address).
    """

    memories: tuple[LoadedMemory, ...]
    word_bits: int
    data_width: int

    @property
    def addr_width(self) -> int:
        return max(1, (len(self.memories) - 1).bit_length()) + self.word_bits

    @property
    def words(self) -> int:
        return sum(m.depth for m in self.memories)

    @property
    def layout(self) -> "StreamLayout":
        return StreamLayout("ld", (Field("data", 0, 1, self.data_width, False, None, "packed memory word"),
                                   Field("addr", self.data_width, 1, self.addr_width, False, None,
                                         "memory index << word_bits | word")))

    def image(self, plan: "HardwarePlan") -> list[tuple[int, int]]:
        """``(addr, data)`` of every word to load, memory by memory."""
        out = []
        for m in self.memories:
            words = plan.layers[m.layer].weight_words(m.lane)
            out += [((m.index << self.word_bits) | k, w) for k, w in enumerate(words)]
        return out


def _load_plan(layers: list["LayerPlan"]) -> LoadPlan | None:
    mems = [(x.index, mem) for x in layers for mem in x.memories if mem.loaded]
    if not mems:
        return None
    entries = tuple(LoadedMemory(mem.name, l, lane, k, mem.depth, mem.width)
                    for k, (l, mem, lane) in enumerate((l, mem, lane) for l, mem in mems for lane in range(mem.count)))
    word_bits = max(1, max(e.depth - 1 for e in entries).bit_length())
    return LoadPlan(entries, word_bits, max(e.width for e in entries))


# -- training ------------------------------------------------------------------------------------

@dataclass
class TrainLayerPlan:
    """One layer of the training datapath (:class:`~bp_hw.hdl.train_layer.TrainLayer`)."""

    index: int
    layer: QLayer = field(repr=False)
    fold: Folding
    formats: LayerTrainFormats
    prev_err_fmt: QFormat | None
    target_fmt: QFormat | None          # the last layer's target format
    lfsr_seeds: dict                    # (p_out, p_in) -> initial LFSR state
    lut: LutPlan | None
    activation_latency: int
    eta_int: int
    access_base: int
    memories: list[MemoryPlan]
    logic_multipliers: bool = False     # the lanes' products in LUTs: the device has no DSP blocks left
    delta_logic: bool = False           # ... and the delta unit's
    dsp_cell: str | None = None         # the lanes' products in instantiated DSP cells (DSP_CELL_OF_FAMILY)
    operand_latency: int = 0            # registers between the RAMs and the lanes' operand multiplexers
                                        # (SLOW_BRAM_FAMILIES: 1)
    delta_cell: str | None = None       # the delta unit's products in instantiated DSP cells

    @property
    def delta_products(self) -> list[tuple[int, int]]:
        """Operand widths of the delta unit's multipliers: ``o * (ONE - o)`` (or ``o * o``) and
        ``e * d`` for a sigmoid/tanh derivative (``d`` and ``o`` within ``[-ONE, ONE]``: ``f_o + 2`` bits)."""
        if self.formats.derivative not in LUT_FUNCTIONS:
            return []
        dw = self.layer.out_fmt.frac_bits + 2
        return [(dw, dw), (self.formats.err_fmt.width, dw)]

    def dsps(self, dev: Device) -> tuple[int, int]:
        """DSP blocks of the lanes and of the delta unit on ``dev`` (0 for those in logic)."""
        lanes = 0 if self.logic_multipliers else self.fold.lanes * dsps_per_multiplier(
            self.formats.operand_a_width, self.formats.operand_b_width, dev)
        delta = 0 if self.delta_logic else sum(dsps_per_multiplier(a, b, dev) for a, b in self.delta_products)
        return lanes, delta

    @property
    def last(self) -> bool:
        return self.target_fmt is not None

    @property
    def access_size(self) -> int:
        """Elements this layer maps on the access port: its weights, then its biases."""
        return self.layer.macs + self.layer.fan_out

    @property
    def fwd_cycles(self) -> int:
        """FWD from its start pulse to its done pulse."""
        return (TRAIN_ISSUE_DELAY + self.fold.cycles - 1 + TRAIN_FWD_TAIL + self.activation_latency
                + self.lane_product_latency - PRODUCT_LATENCY)

    @property
    def err_cycles(self) -> int:
        """ERR from ``bwd_start`` to ``err_done``."""
        return TRAIN_ISSUE_DELAY + self.fold.cycles - 1 + TRAIN_ERR_TAIL + self.lane_product_latency - PRODUCT_LATENCY

    @property
    def upd_cycles(self) -> int:
        """UPD from ``bwd_start`` to its done pulse: it issues right after ERR's ``fold.cycles`` issue
        cycles for ``l > 0`` (first for layer 0), the weight words, then the biases."""
        err_issue = self.fold.cycles if self.index > 0 else 0
        return (TRAIN_ISSUE_DELAY + err_issue + self.fold.cycles + self.fold.groups - 1
                + train_upd_tail(self.formats.batch, self.lane_product_latency))

    @property
    def delta_cycles(self) -> int:
        """The delta unit from ``delta_start`` (its first neuron) to ``delta_done``."""
        return self.layer.fan_out - 1 + self.delta_store + 1 + (self.eta_int != 1)

    @property
    def lane_product_latency(self) -> int:
        """Cycles from the RAM data (stage 1) to the products: :attr:`operand_latency`, then the
        product stage (:func:`product_latency`: 3 in logic or from an instantiated DSP cell, else 2)."""
        return self.operand_latency + product_latency(self.logic_multipliers, self.dsp_cell)

    @property
    def delta_product_latency(self) -> int:
        """Cycles of each of the delta unit's product stages (3 in logic or from a DSP cell, else 2)."""
        return product_latency(self.delta_logic, self.delta_cell)

    @property
    def delta_store(self) -> int:
        """The delta unit, a neuron's visit to the cycle its delta is stored (``TRAIN_DELTA_TAIL - 1``
        with its two products on DSP blocks, two more cycles per extra product cycle)."""
        extra = 2 * (self.delta_product_latency - PRODUCT_LATENCY) if self.delta_products else 0
        return TRAIN_DELTA_TAIL - 1 + extra

    @property
    def multipliers(self) -> int:
        """The lanes, the delta unit's ``o * (1 - o)`` (or ``o * o``) and ``e * d`` for a sigmoid/tanh
        derivative (none in the output layer under cross-entropy), and ``delta * eta_int`` unless ``eta_int == 1``."""
        return self.fold.lanes + len(self.delta_products) + (self.eta_int != 1)

    def weight_words(self, lane: int) -> list[int]:
        return lane_weight_words(self.layer, self.fold, lane)

    def bias_words(self, lane: int) -> list[int]:
        return lane_bias_words(self.layer, self.fold, lane)


@dataclass
class TrainPlan:
    """On-chip training (:class:`~bp_hw.hdl.backprop.TrainNetwork`): settings, layers, access map, cycles."""

    spec: TrainSpec
    spec_dict: dict
    eta_int: int
    eta_frac: int
    target_fmt: QFormat
    access_width: int
    access_depth: int
    layers: list[TrainLayerPlan]
    read_latency: int = ACCESS_READ_LATENCY

    @property
    def eta(self) -> float:
        return self.eta_int / 2 ** self.eta_frac

    @property
    def infer_cycles(self) -> int:
        """Cycles per inference sample: accept, the forward passes, the hand-over to ``o``, idle again."""
        return 2 + sum(x.fwd_cycles for x in self.layers)

    @property
    def train_cycles(self) -> int:
        """Cycles per training sample (the critical path through the deltas, ERRs and the last UPD)."""
        e = self.layers
        t = 1 + sum(x.fwd_cycles for x in e)          # fwd_done of the last layer, after the accept cycle
        ends = []
        for l in range(len(e) - 1, -1, -1):
            t += e[l].delta_cycles                    # bwd_start(l)
            ends.append(t + e[l].upd_cycles)
            if l > 0:
                t += e[l].err_cycles                  # err_done(l) = delta_start(l - 1)
        return max(ends) + 1

    @property
    def multipliers(self) -> int:
        return sum(x.multipliers for x in self.layers)

    @property
    def access_addr_width(self) -> int:
        return max(self.access_depth - 1, 1).bit_length()

    def address_map(self) -> list[dict]:
        """The access port's flat address map: ``W_l[i, j]`` at ``weights_base + i * fan_in + j``,
        then ``b_l[i]`` at ``biases_base + i``."""
        return [{"layer": x.index, "weights_base": x.access_base,
                 "weights_shape": [x.layer.fan_out, x.layer.fan_in], "weight_format": x.layer.weight_fmt.name,
                 "biases_base": x.access_base + x.layer.macs, "biases": x.layer.fan_out,
                 "bias_format": x.layer.bias_fmt.name} for x in self.layers]


def _train_plan(qmodel: QModel, spec, folds: list[Folding], dev: Device | None = None) -> TrainPlan:
    spec = train_spec_of(spec)
    formats = layer_formats(qmodel, spec)   # the spec's formats, shifts and widths
    eta_int, eta_frac = spec.eta
    layers = qmodel.layers
    target = target_format(qmodel)
    access_width = max(max(signed_width(L.weight_fmt), signed_width(L.bias_fmt)) for L in layers)
    plans, base = [], 0
    for l, (L, f) in enumerate(zip(layers, folds)):
        seeds = {(po, pi): lane_seed(spec.seed, l, po, pi) for po in range(f.lanes_out) for pi in range(f.lanes_in)}
        def place(depth, width):
            """A single word in flip-flops (TrainLayer's OneWord), a big RAM in block RAM, else yosys decides
            (an unconstrained 200-300 x 16 RAM on ECP5 went to LUT RAM and hit an abc9 assertion)."""
            return "logic" if depth == 1 else "block" if depth * width > AUTO_LOGIC_BITS else "auto"
        mems = [MemoryPlan(f"layer{l}.weights", l, "weights", f.lanes_out, f.cycles,
                           f.lanes_in * L.weight_fmt.width, place(f.cycles, f.lanes_in * L.weight_fmt.width), True,
                           f.lanes_in),
                MemoryPlan(f"layer{l}.biases", l, "biases", f.lanes_out, f.groups, L.bias_fmt.width,
                           place(f.groups, L.bias_fmt.width), True)]
        fm = formats[l]
        if fm.batch > 1:   # the mini-batch sums, one per weight and bias
            mems += [MemoryPlan(f"layer{l}.weight_sums", l, "grad_sums", f.lanes_out, f.cycles,
                                f.lanes_in * fm.grad_width, place(f.cycles, f.lanes_in * fm.grad_width), True,
                                f.lanes_in),
                     MemoryPlan(f"layer{l}.bias_sums", l, "grad_sums", f.lanes_out, f.groups,
                                fm.bias_grad_width, place(f.groups, fm.bias_grad_width), True)]
        lut = _lut_plan(L)
        if lut is not None:
            mems.append(MemoryPlan(f"layer{l}.lut", l, "lut", f.lanes_out, lut.rom_depth, L.out_fmt.width, "auto"))
        plans.append(TrainLayerPlan(l, L, f, formats[l], formats[l - 1].err_fmt if l > 0 else None,
                                    target if l == len(layers) - 1 else None, seeds, lut, activation_latency(L),
                                    eta_int, base, mems))
        base += L.macs + L.fan_out
    if dev is not None:
        # past the device's DSP blocks, products move to logic: the groups with the fewest DSPs first
        groups = sorted(((plans[l].dsps(dev)[kind], kind, l) for l in range(len(plans)) for kind in (1, 0)),
                        key=lambda g: (g[0], -g[1]))
        for dsps, kind, l in groups:
            if sum(sum(x.dsps(dev)) for x in plans) <= dev.dsps:
                break
            if kind:
                plans[l].delta_logic = True
            else:
                plans[l].logic_multipliers = True
    if dev is not None and dev.family in DSP_CELL_OF_FAMILY:
        # the lanes' products in the family's DSP cell with its own registers (as the inference
        # lanes'): a yosys-inferred MULT18X18D left combinational limited iris P=8,3 to 113.9 MHz
        for x in plans:
            if not x.logic_multipliers and x.formats.operand_a_width <= dev.dsp_a_bits \
                    and x.formats.operand_b_width <= dev.dsp_b_bits:
                x.dsp_cell = DSP_CELL_OF_FAMILY[dev.family]
            if x.delta_products and not x.delta_logic \
                    and all(a <= dev.dsp_a_bits and b <= dev.dsp_b_bits for a, b in x.delta_products):
                x.delta_cell = DSP_CELL_OF_FAMILY[dev.family]
    if dev is not None and dev.family in SLOW_BRAM_FAMILIES:
        # every operand registered next to its RAM before the operand multiplexers: the digits
        # 64-32-10 training top went from a DP16KD's output through the multiplexer into the product
        # stage's register (97.8 MHz with the MULT18X18D cells, 103.4 with inferred products)
        for x in plans:
            x.operand_latency = 1
    # a parameter read goes through the same operand registers (the RAM word registered next to its RAM)
    read_latency = ACCESS_READ_LATENCY + max(x.operand_latency for x in plans)
    return TrainPlan(spec, spec_dict(spec, formats), eta_int, eta_frac, target, access_width, base, plans,
                     read_latency)


# -- the network ------------------------------------------------------------------------------------

@dataclass
class HardwarePlan:
    """Everything the generator builds and every consumer needs to know, for one design."""

    qmodel: QModel = field(repr=False)
    parallel: list[int]
    device: Device | None
    taps: bool
    layers: list[LayerPlan]
    inp: StreamLayout
    out: StreamLayout
    training: TrainPlan | None = None
    load: LoadPlan | None = None

    @property
    def kind(self) -> str:
        return "training" if self.training is not None else "inference"

    @property
    def sizes(self) -> list[int]:
        return self.qmodel.sizes

    @property
    def mem_links(self) -> list[bool]:
        """Per boundary: the slots between the two layers live in block RAM."""
        return [up.output_slots == "bram" for up in self.layers[:-1]]

    @property
    def latency(self) -> int:
        """Input transfer (a vector's last beat) to output transfer (inference datapath), when
        nothing stalls.

        A later layer starts issuing the cycle after the slot before it fills, so each
        layer but the last adds its pipeline less the hand-over cycle, and each later
        layer adds its issue cycles; so does the first layer when its input comes from
        the input buffer (it starts once the vector's last beat is in). Training designs:
        cycles per inference sample.
        """
        if self.training is not None:
            return self.training.infer_cycles
        fed = self.layers if self.layers[0].input_source == "buffer" else self.layers[1:]
        return sum(x.latency - 1 for x in self.layers) + 1 + sum(x.interval for x in fed)

    @property
    def standalone_latency(self) -> int:
        """Presenting an input to an idle network to its output transfer: the first layer's
        issue cycles (a vector input's transfer comes with the last of them), or the beats
        of a buffered input, plus :attr:`latency`."""
        if self.layers[0].input_source == "buffer":
            return self.latency + self.inp.beats
        return self.latency + self.layers[0].interval

    @property
    def interval(self) -> int:
        """Steady-state cycles between samples (training designs: per training sample)."""
        if self.training is not None:
            return self.training.train_cycles
        return max(x.interval for x in self.layers)

    @property
    def ideal_interval(self) -> int:
        return max(x.fold.cycles for x in self.layers)

    @property
    def multipliers(self) -> int:
        if self.training is not None:
            return self.training.multipliers
        return sum(x.multipliers for x in self.layers)

    @property
    def mac_ops(self) -> int:
        """Multiply-accumulates per inference."""
        return sum(layer.macs for layer in self.qmodel.layers)

    @property
    def memories(self) -> list[MemoryPlan]:
        if self.training is not None:
            return [m for x in self.training.layers for m in x.memories]
        return [m for x in self.layers for m in x.memories]

    def tap_layouts(self) -> list[StreamLayout]:
        if not self.taps or self.training is not None:
            return []
        return [_vector_stream(f"tap{l}", "y", L.fan_out, L.out_fmt, ready=False)
                for l, L in enumerate(self.qmodel.layers)]


#: An ``auto`` memory of at most this many bits stays in logic (yosys keeps small ROMs in LUTs).
AUTO_LOGIC_BITS = 2048
#: Input vectors wider than this many bits arrive as beats into the input buffer unless told otherwise.
INPUT_VECTOR_BITS = 256
INPUT_MODES = ("vector", "beats")


def input_mode_of(qmodel: QModel, mode: str | None) -> str:
    """``"vector"`` (one payload per input, read in place) or ``"beats"`` (``P_in`` elements per beat,
    through the input buffer); ``None`` picks beats for inputs wider than :data:`INPUT_VECTOR_BITS`."""
    if mode is None:
        return "beats" if qmodel.sizes[0] * qmodel.input_fmt.width > INPUT_VECTOR_BITS else "vector"
    if mode not in INPUT_MODES:
        raise BpHwError(f"input mode {mode!r}: use one of {', '.join(INPUT_MODES)}")
    return mode


def make_plan(qmodel: QModel, parallel=1, *, device: str | Device | None = None, train=None,
              taps: bool = False, input_mode: str | None = None, weights: str = "auto") -> HardwarePlan:
    """The plan for ``qmodel`` with ``parallel`` lanes per layer; ``train`` (a TrainSpec, its dict or
    ``True`` for the defaults) plans the on-chip training design instead of the inference one.
    ``input_mode`` (inference only): ``"vector"``, ``"beats"`` or ``None`` (:func:`input_mode_of`).
    ``weights`` (inference only): where the weight memories go, one of :data:`WEIGHT_PLACEMENTS`
    (``auto``: :func:`_weight_placements`), or a list with one per layer."""
    par = parse_parallel(parallel, len(qmodel.layers))
    dev = lookup_device(device) if isinstance(device, str) else device
    folds = [Folding.of(L.fan_in, L.fan_out, p, l) for l, (L, p) in enumerate(zip(qmodel.layers, par))]
    par = [f.spec for f in folds]
    training = _train_plan(qmodel, None if train is True else train, folds, dev) if train is not None else None
    if training is not None and input_mode == "beats":
        raise BpHwError("a training design takes whole input vectors; beats are for inference designs")
    beats = training is None and input_mode_of(qmodel, input_mode) == "beats"
    links = [_slots_in_bram(up, down) for up, down in zip(folds, folds[1:])]
    luts = [_lut_plan(L) for L in qmodel.layers]
    out_brams = [l < len(folds) - 1 and links[l] for l in range(len(folds))]
    if isinstance(weights, (list, tuple)):
        if len(weights) != len(folds) or any(w not in WEIGHT_PLACEMENTS[1:] for w in weights):
            raise BpHwError(f"weights per layer: {len(folds)} of {', '.join(WEIGHT_PLACEMENTS[1:])}, got {weights}")
        places = list(weights)
        if "spram" in places:
            _check_spram(qmodel.layers, folds, [l for l, w in enumerate(places) if w == "spram"], dev)
    elif training is not None and weights == "auto":
        places = ["rom"] * len(folds)    # the training RAMs are the training plan's; nothing moves to SPRAM
    else:
        places = _weight_placements(qmodel.layers, folds, luts, out_brams, weights, dev)
    if training is not None and any(w == "spram" for w in places):
        raise BpHwError("the training design keeps its weights in block RAM; --weights spram is for inference")
    layers = []
    for l, (L, f) in enumerate(zip(qmodel.layers, folds)):
        in_bram = l > 0 and links[l - 1]
        out_bram = out_brams[l]
        lut = luts[l]
        mems = _inference_memories(l, L, f, lut, out_bram, places[l])
        if l == 0 and beats:
            mems.insert(0, MemoryPlan("input.buffer", 0, "buffer", 1, 2 * slot_stride(f.chunks),
                                      f.lanes_in * L.in_fmt.width,
                                      "block", True, f.lanes_in))
        source = "buffer" if l == 0 and beats else "bram" if in_bram else "payload"
        layers.append(LayerPlan(l, L, f, source, "bram" if out_bram else "registers",
                                lut, activation_latency(L), mems, monitor=taps and out_bram,
                                in_word_chunks=folds[l - 1].lanes_out // f.lanes_in if in_bram else 1,
                                operand_latency=int(dev is not None and dev.family in SLOW_BRAM_FAMILIES)))
    if dev is not None and training is None:
        # past the device's DSP blocks, the layers with the fewest multipliers compute in logic
        for x in sorted(layers, key=lambda x: x.multipliers):
            if sum(y.dsps(dev) for y in layers) <= dev.dsps:
                break
            x.logic_multipliers = True
    if dev is not None and training is None and dev.family in DSP_CELL_OF_FAMILY:
        for x in layers:
            w, a = x.layer.weight_fmt, x.layer.in_fmt
            if not x.logic_multipliers and w.width + (not w.signed) <= dev.dsp_a_bits \
                    and a.width + (not a.signed) <= dev.dsp_b_bits:
                x.dsp_cell = DSP_CELL_OF_FAMILY[dev.family]
    q = qmodel
    if training is None:
        if beats:
            inp = _vector_stream("i", "x", folds[0].lanes_in, q.input_fmt, beats=folds[0].chunks)
        else:
            inp = _vector_stream("i", "x", q.sizes[0], q.input_fmt)
    else:
        n_x, n_t = q.sizes[0], q.sizes[-1]
        t_fmt = training.target_fmt
        inp = StreamLayout("i", (
            Field("x", 0, n_x, q.input_fmt.width, q.input_fmt.signed, q.input_fmt.name, "input vector"),
            Field("t", n_x * q.input_fmt.width, n_t, t_fmt.width, t_fmt.signed, t_fmt.name,
                  "target: 1.0 for the true class, 0 (-1.0 for tanh) elsewhere, with the output's fraction "
                  "bits (format widened if the output format cannot hold 1.0)"),
            Field("train", n_x * q.input_fmt.width + n_t * t_fmt.width, 1, 1, False, None,
                  "1: train on this sample, 0: infer only")))
    out = _vector_stream("o", "y", q.sizes[-1], q.output_fmt)
    load = _load_plan(layers) if training is None else None
    return HardwarePlan(qmodel, par, dev, taps and training is None, layers, inp, out, training, load)
