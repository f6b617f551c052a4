"""The network in a clock domain of its own, behind stream crossings: the board link runs slower.

A board top's link (UART, FIFO, deframer, framer) is small but spread across the die around the DSP
and SPRAM columns, and at the network's clock its routing limited the iCE40UP5K board top to about
48 MHz while the network alone closed near 60 MHz. :class:`NetworkCrossing` lets the link run at a
clock a few times slower (the board's own oscillator on the iCE40, a second PLL output on the ECP5)
and the network at its own, with only two stream crossings between them.

The crossings hold a transfer in a register and hand it over with a toggle synchronised through two
flip-flops each way (bundled data): the payload has been stable for two clocks of the receiving
domain when the receiver sees it offered, and it is not written again until the receiver has taken
it and its acknowledgement has come back. No FIFO memory, no block RAM, one register per crossing.
"""

from __future__ import annotations

from amaranth.hdl import Cat, DomainRenamer, Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["StreamCrossing", "NetworkCrossing", "TrainCrossing", "access_request_layout", "NETWORK_DOMAIN"]

#: The clock domain of the network behind a :class:`NetworkCrossing`.
NETWORK_DOMAIN = "net"


class StreamCrossing(wiring.Component):
    """One stream from clock domain ``i_domain`` to ``o_domain``, one transfer at a time.

    Parameters
    ----------
    shape : shape-castable
        The payload.
    i_domain, o_domain : str
        Clock domains of ``i`` and ``o``.

    Ports
    -----
    i : In(stream.Signature(shape))
        In ``i_domain``. ``ready`` is a function of registers only.
    o : Out(stream.Signature(shape))
        In ``o_domain``. ``valid`` is a function of registers only; ``payload`` is the ``i_domain``
        register that took the transfer, unchanged while ``valid`` is high and for two ``o_domain``
        cycles before.

    Latency and rate
    ----------------
    A transfer on ``i`` is offered on ``o`` 2 or 3 ``o_domain`` cycles later (2 synchroniser stages).
    ``i`` is ready again 2 or 3 ``i_domain`` cycles after ``o`` has taken it (the acknowledgement's 2
    stages): one transfer per about 3 + 3 cycles of the two clocks. Transfers are never lost,
    duplicated or reordered; the payload is held in one register (no copy on the ``o`` side).
    """

    def __init__(self, shape, i_domain: str, o_domain: str):
        self._i_domain, self._o_domain = i_domain, o_domain
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        held = Signal.like(self.i.payload)
        req = Signal()        # i side: toggled when held takes a transfer
        ack = Signal()        # o side: the value of req last taken by o
        req_o = Signal()      # req in the o domain
        ack_i = Signal()      # ack in the i domain
        m.submodules.req_sync = FFSynchronizer(req, req_o, o_domain=self._o_domain)
        m.submodules.ack_sync = FFSynchronizer(ack, ack_i, o_domain=self._i_domain)

        m.d.comb += self.i.ready.eq(req == ack_i)
        with m.If(self.i.valid & self.i.ready):
            m.d[self._i_domain] += [held.eq(self.i.payload), req.eq(~req)]

        m.d.comb += [self.o.valid.eq(req_o != ack), self.o.payload.eq(held)]
        with m.If(self.o.valid & self.o.ready):
            m.d[self._o_domain] += ack.eq(req_o)
        return m


def _front_register(m: Module, down: StreamCrossing):
    """A register in :data:`NETWORK_DOMAIN` that takes ``down``'s transfers (its ``ready`` a register: the
    crossing's acknowledgement never depends on the network). Returns ``(front, full, taken)``: the
    payload, whether it holds one, and the signal the caller drives when the network takes it."""
    front = Signal(down.o.payload.shape())
    full, taken = Signal(), Signal()
    nd = m.d[NETWORK_DOMAIN]
    m.d.comb += down.o.ready.eq(~full)
    with m.If(down.o.valid & ~full):
        nd += [front.eq(down.o.payload), full.eq(1)]
    with m.If(taken):
        nd += full.eq(0)
    return front, full, taken


class NetworkCrossing(wiring.Component):
    """A network's streams (``i``, ``o`` and the load port ``ld`` if it has one) in ``sync``, the network
    itself in :data:`NETWORK_DOMAIN`.

    Parameters
    ----------
    network : wiring.Component
        Ports ``i`` (In stream), ``o`` (Out stream), optionally ``ld`` (In stream; see DESIGN.md). It
        becomes a submodule, its ``sync`` renamed to :data:`NETWORK_DOMAIN`.

    Ports
    -----
    The network's ``i``, ``o`` and ``ld``, with the same payloads, in ``sync``.

    Behaviour and latency
    ---------------------
    Input beats and load words go through one :class:`StreamCrossing`, a tag bit saying which, so a
    load word given before a beat reaches the network before it (the network's weight memories are
    written only between samples). Outputs come back through a second crossing. Each adds 2 or 3
    cycles of the receiving clock to the network's latency; each takes one transfer per about 3 + 3 cycles
    of the two clocks, far more than a UART delivers; a register in front of the network adds one
    more cycle of the network's clock, so that no path runs from the network's ``ready`` to the
    crossing. ``ld.ready`` and ``i.ready`` are low while the previous transfer crosses: a writer of
    the load port must wait for ``ready``. Registers: two of a beat or load word (and its tag), one
    output vector, four toggles and their synchronisers.
    """

    def __init__(self, network: wiring.Component):
        members = network.signature.members
        self.network = network
        self._loads = "ld" in members
        ports = {"i": members["i"], "o": members["o"]}
        if self._loads:
            ports["ld"] = members["ld"]
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        net = self.network
        m.submodules.network = DomainRenamer(NETWORK_DOMAIN)(net)
        i_bits = len(Value.cast(self.i.payload))
        ld_bits = len(Value.cast(self.ld.payload)) if self._loads else 0
        down_layout = data.StructLayout({"body": max(i_bits, ld_bits), "load": 1})
        m.submodules.down = down = StreamCrossing(down_layout, "sync", NETWORK_DOMAIN)
        m.submodules.up = up = StreamCrossing(self.o.payload.shape(), NETWORK_DOMAIN, "sync")

        # sync side: a load word or an input beat into the down crossing (the link never offers both)
        if self._loads:
            m.d.comb += [
                down.i.valid.eq(self.i.valid | self.ld.valid),
                down.i.payload.load.eq(self.ld.valid),
                down.i.payload.body.eq(Mux(self.ld.valid, Value.cast(self.ld.payload), Value.cast(self.i.payload))),
                self.ld.ready.eq(down.i.ready),
                self.i.ready.eq(down.i.ready & ~self.ld.valid),
            ]
        else:
            m.d.comb += [down.i.valid.eq(self.i.valid), down.i.payload.body.eq(Value.cast(self.i.payload)),
                         self.i.ready.eq(down.i.ready)]

        # network side: a register in front of the network (so that the crossing's acknowledgement depends
        # on registers only, not on the network's ready), then to the load port or the input, by the tag
        front, full, taken = _front_register(m, down)
        load = front.load
        m.d.comb += [Value.cast(net.i.payload).eq(front.body[:i_bits]), net.i.valid.eq(full & ~load)]
        if self._loads:
            m.d.comb += [Value.cast(net.ld.payload).eq(front.body[:ld_bits]), net.ld.valid.eq(full & load),
                         taken.eq(full & Mux(load, net.ld.ready, net.i.ready))]
        else:
            m.d.comb += taken.eq(full & net.i.ready)

        wiring.connect(m, net.o, up.i)
        wiring.connect(m, up.o, wiring.flipped(self.o))
        return m


def access_request_layout(addr_width: int, width: int) -> data.StructLayout:
    """A weight access request through :class:`TrainCrossing`: ``addr``, ``wdata``, ``we`` (0: a read)."""
    return data.StructLayout({"addr": addr_width, "wdata": signed(width), "we": 1})


class TrainCrossing(wiring.Component):
    """A :class:`~bp_hw.hdl.backprop.TrainNetwork` in :data:`NETWORK_DOMAIN`, its samples and its weight
    access as streams in ``sync``.

    Parameters
    ----------
    network : TrainNetwork
        Ports ``i``, ``o``, ``wacc``, ``busy`` (its docstring). A submodule, its ``sync`` renamed.

    Ports (in ``sync``)
    -------------------
    i : In(stream)
        The network's samples (``x``, ``t``, ``train``).
    o : Out(stream)
        The network's output vectors.
    acc : In(stream.Signature(access_request_layout(...)))
        Parameter writes (``we`` 1) and reads (``we`` 0) at the network's flat addresses.
    rd : Out(stream.Signature(signed(access_width)))
        One value per read, in order.

    Behaviour and latency
    ---------------------
    Samples and access requests cross in one :class:`StreamCrossing`, in the order they are given (a
    sample offered in the same cycle as a request goes first), so a read sees every earlier sample's
    update and every earlier write. On the network's side a request waits in a register until the
    network is idle (``busy`` low) with no output waiting (seen from a register, a cycle late), then
    is presented to ``wacc`` for one cycle;
    a read's value is taken ``read_latency`` cycles later and goes back with the output vectors through
    a second crossing, ahead of any sample after it (no sample enters the network while a read is on
    its way). Each crossing adds 2 or 3 cycles of the receiving clock, the register in front of the
    network one of its clock; one transfer per about 3 + 3 cycles of the two clocks.
    """

    def __init__(self, network):
        self.network = network
        self.read_latency = network.train_plan.read_latency
        members = network.signature.members
        wacc = members["wacc"].signature.members
        self._addr_width = len(Signal(wacc["addr"].shape))
        self._width = wacc["wdata"].shape.width
        super().__init__({
            "i": members["i"], "o": members["o"],
            "acc": In(stream.Signature(access_request_layout(self._addr_width, self._width))),
            "rd": Out(stream.Signature(signed(self._width))),
        })

    def elaborate(self, platform):
        m = Module()
        net = self.network
        m.submodules.network = DomainRenamer(NETWORK_DOMAIN)(net)
        nd = m.d[NETWORK_DOMAIN]
        s_bits, a_bits = len(Value.cast(self.i.payload)), len(Value.cast(self.acc.payload))
        o_bits = len(Value.cast(self.o.payload))
        down_layout = data.StructLayout({"body": max(s_bits, a_bits), "access": 1})
        up_layout = data.StructLayout({"body": max(o_bits, self._width), "read": 1})
        m.submodules.down = down = StreamCrossing(down_layout, "sync", NETWORK_DOMAIN)
        m.submodules.up = up = StreamCrossing(up_layout, NETWORK_DOMAIN, "sync")

        # sync side: a sample before a request; the answers back by their tag
        m.d.comb += [
            down.i.valid.eq(self.i.valid | self.acc.valid),
            down.i.payload.access.eq(~self.i.valid),
            down.i.payload.body.eq(Mux(self.i.valid, Value.cast(self.i.payload), Value.cast(self.acc.payload))),
            self.i.ready.eq(down.i.ready),
            self.acc.ready.eq(down.i.ready & ~self.i.valid),
            Value.cast(self.o.payload).eq(up.o.payload.body[:o_bits]),
            self.rd.payload.eq(up.o.payload.body[:self._width]),
            self.o.valid.eq(up.o.valid & ~up.o.payload.read),
            self.rd.valid.eq(up.o.valid & up.o.payload.read),
            up.o.ready.eq(Mux(up.o.payload.read, self.rd.ready, self.o.ready)),
        ]

        # network side: the register in front of the network
        front, full, taken = _front_register(m, down)
        request = Signal(access_request_layout(self._addr_width, self._width))
        m.d.comb += request.eq(front.body[:a_bits])

        # reads on their way (the pipeline of read_latency cycles) and the value waiting to go back
        on_way = Signal(self.read_latency)
        held = Signal(signed(self._width))
        held_full = Signal()
        reading = Signal()      # a read issued whose value has not gone back yet (a register)

        sample = full & ~front.access
        access = Signal()
        # The network is quiet (idle, no output waiting, no read on its way), from a register: a cycle
        # late, but nothing can make it busy meanwhile except what this side gives it, which is excluded.
        quiet = Signal()
        m.d.comb += [
            Value.cast(net.i.payload).eq(front.body[:s_bits]),
            net.i.valid.eq(sample & ~reading),
            access.eq(full & front.access & quiet),
            net.wacc.addr.eq(request.addr),
            net.wacc.wdata.eq(request.wdata),
            net.wacc.we.eq(access & request.we),
            taken.eq((net.i.valid & net.i.ready) | access),
        ]
        nd += quiet.eq(~net.busy & ~net.o.valid & ~reading & ~access & ~(net.i.valid & net.i.ready))
        nd += on_way.eq(Cat(access & ~request.we, on_way[:-1]))
        with m.If(access & ~request.we):
            nd += reading.eq(1)
        with m.Elif(held_full & up.i.ready):
            nd += reading.eq(0)
        with m.If(on_way[-1]):
            nd += [held.eq(net.wacc.rdata), held_full.eq(1)]

        # back: a read's value or an output vector (never both: a read is issued only with no output
        # waiting and no sample in the network, and no sample enters until its value has gone back)
        m.d.comb += [
            up.i.valid.eq(held_full | net.o.valid),
            up.i.payload.read.eq(held_full),
            up.i.payload.body.eq(Mux(held_full, held, Value.cast(net.o.payload))),
            net.o.ready.eq(up.i.ready),
        ]
        with m.If(held_full & up.i.ready):
            nd += held_full.eq(0)
        return m
