"""Gateware that serves a network over a UART with the frames of :mod:`bp_hw.boards.frame`."""


from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bp_hw.hdl.uart import UARTRx, UARTTx

from .frame import INFO, NAK, SYNC_REQUEST, SYNC_RESPONSE, FrameSpec

__all__ = ["NetworkUART", "frame_spec_of", "crc8_update"]


def frame_spec_of(network: wiring.Component) -> FrameSpec:
    """The frame sizes implied by a network's ``i`` and ``o`` stream payloads."""
    members = network.signature.members
    shapes = []
    for port in ("i", "o"):
        layout = data.Layout.cast(members[port].signature.members["payload"].shape)
        if not isinstance(layout, data.ArrayLayout):
            raise TypeError(f"network port {port} payload must be an ArrayLayout, not {layout!r}")
        shapes.append((layout.length, layout.elem_shape.width))
    return FrameSpec(shapes[0][0], shapes[1][0], shapes[0][1], shapes[1][1])


def crc8_update(crc: Value, byte: Value) -> Value:
    """Combinational CRC-8/SMBUS step: the CRC after feeding ``byte`` (unrolled over 8 bits)."""
    c = crc ^ byte
    for _ in range(8):
        shifted = Cat(Const(0, 1), c[:7])
        c = Mux(c[7], shifted ^ 0x07, shifted)
    return c


class NetworkUART(wiring.Component):
    """Wraps a network with a UART: receives request frames, answers with response frames.

    Parameters
    ----------
    network : wiring.Component
        Has ``i`` (In) and ``o`` (Out) streams with ``ArrayLayout`` payloads of
        signed elements (the network contract of DESIGN.md). It becomes a submodule.
    divisor : int
        Clock cycles per UART bit.

    Ports
    -----
    rx : In(1)
        Serial input from the host (asynchronous, idles high).
    tx : Out(1)
        Serial output to the host (idles high).
    frame_error : Out(1)
        Pulses on a UART framing error, a receive overrun or a request CRC error
        (for an LED).

    Behaviour and latency
    ---------------------
    A request's payload is shifted into a register as it arrives; when its CRC
    byte checks out the vector is offered to ``network.i`` (a bad CRC answers
    ``NAK`` instead). Whenever ``network.o`` is valid the vector is copied into
    an output shift register in one cycle and sent as a response frame. The
    wrapper adds a few cycles to the network's latency; the line dominates:
    ``(request_length + response_length) * 10 * divisor`` cycles per sample.
    One request at a time: the host waits for the answer before sending the
    next request (a request that arrives while the previous one still waits
    for the network loses bytes to receiver overrun and is answered by nothing
    or a NAK).
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    frame_error: Out(1)

    def __init__(self, network: wiring.Component, divisor: int):
        self.network = network
        self.divisor = divisor
        self.spec = frame_spec_of(network)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        net = self.network
        m.submodules.network = net
        m.submodules.rx = rx = UARTRx(self.divisor)
        m.submodules.tx = tx = UARTTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        info_req = Signal()
        nak_req = Signal()
        crc_error = Signal()
        m.d.comb += self.frame_error.eq(rx.frame_error | rx.overrun | crc_error)

        # --- receive: request frames -> network.i
        n_in_bytes = spec.n_in * spec.in_bytes
        ishreg = Signal(8 * n_in_bytes)
        icrc = Signal(8)
        icount = Signal(range(max(n_in_bytes, 2)))
        for k in range(spec.n_in):
            base = 8 * spec.in_bytes * k
            m.d.comb += net.i.payload[k].eq(ishreg[base:base + spec.in_width])

        m.d.sync += crc_error.eq(0)
        with m.FSM(name="deframe"):
            with m.State("SYNC"):
                m.d.comb += rx.o.ready.eq(1)
                with m.If(rx.o.valid):
                    with m.If(rx.o.payload == SYNC_REQUEST):
                        m.d.sync += [icrc.eq(0), icount.eq(0)]
                        m.next = "PAYLOAD"
                    with m.Elif(rx.o.payload == INFO):
                        m.d.sync += info_req.eq(1)
            with m.State("PAYLOAD"):
                m.d.comb += rx.o.ready.eq(1)
                with m.If(rx.o.valid):
                    m.d.sync += [ishreg.eq(Cat(ishreg[8:], rx.o.payload)),
                                 icrc.eq(crc8_update(icrc, rx.o.payload)),
                                 icount.eq(icount + 1)]
                    with m.If(icount == n_in_bytes - 1):
                        m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += rx.o.ready.eq(1)
                with m.If(rx.o.valid):
                    with m.If(rx.o.payload == icrc):
                        m.next = "OFFER"
                    with m.Else():
                        m.d.sync += [nak_req.eq(1), crc_error.eq(1)]
                        m.next = "SYNC"
            with m.State("OFFER"):
                m.d.comb += net.i.valid.eq(1)
                with m.If(net.i.ready):
                    m.next = "SYNC"

        # --- transmit: network.o and replies -> response frames
        n_out_bytes = spec.n_out * spec.out_bytes
        oshreg = Signal(8 * n_out_bytes)
        ocrc = Signal(8)
        ocount = Signal(range(max(n_out_bytes, 2)))
        info = list(spec.info_response())
        info_idx = Signal(range(len(info)))

        with m.FSM(name="frame"):
            with m.State("IDLE"):
                with m.If(net.o.valid):
                    m.d.comb += net.o.ready.eq(1)
                    for k in range(spec.n_out):
                        base = 8 * spec.out_bytes * k
                        # Assigning the signed element sign-extends it to whole bytes.
                        m.d.sync += oshreg[base:base + 8 * spec.out_bytes].eq(net.o.payload[k])
                    m.d.sync += [ocrc.eq(0), ocount.eq(0)]
                    m.next = "SYNC"
                with m.Elif(nak_req):
                    m.d.sync += nak_req.eq(0)
                    m.next = "NAK"
                with m.Elif(info_req):
                    m.d.sync += [info_req.eq(0), info_idx.eq(0)]
                    m.next = "INFO"
            with m.State("SYNC"):
                m.d.comb += [tx.i.payload.eq(SYNC_RESPONSE), tx.i.valid.eq(1)]
                with m.If(tx.i.ready):
                    m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += [tx.i.payload.eq(oshreg[:8]), tx.i.valid.eq(1)]
                with m.If(tx.i.ready):
                    m.d.sync += [oshreg.eq(oshreg >> 8), ocrc.eq(crc8_update(ocrc, oshreg[:8])),
                                 ocount.eq(ocount + 1)]
                    with m.If(ocount == n_out_bytes - 1):
                        m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += [tx.i.payload.eq(ocrc), tx.i.valid.eq(1)]
                with m.If(tx.i.ready):
                    m.next = "IDLE"
            with m.State("NAK"):
                m.d.comb += [tx.i.payload.eq(NAK), tx.i.valid.eq(1)]
                with m.If(tx.i.ready):
                    m.next = "IDLE"
            with m.State("INFO"):
                m.d.comb += tx.i.valid.eq(1)
                with m.Switch(info_idx):
                    for k, byte in enumerate(info):
                        with m.Case(k):
                            m.d.comb += tx.i.payload.eq(byte)
                with m.If(tx.i.ready):
                    m.d.sync += info_idx.eq(info_idx + 1)
                    with m.If(info_idx == len(info) - 1):
                        m.next = "IDLE"
        return m
