"""Gateware that serves a network over a UART with the frames of :mod:`bp_hw.boards.frame` (protocol 2)."""


from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .frame import ACK, INFO, LOAD, LOAD_BLOCK, NAK, SYNC_REQUEST, SYNC_RESPONSE, FrameSpec
from .link_core import IDLE_TICK_BITS, TAG_DEPTH, LinkCore, check_idle_timeout

__all__ = ["NetworkUART"]

_INFER, _ACK, _INFO = range(3)


class NetworkUART(wiring.Component):
    """Serves a network over a UART: request frames in, response frames out, several in flight.

    Parameters
    ----------
    network : wiring.Component
        Has ``i`` (In) and ``o`` (Out) streams with ``ArrayLayout`` payloads (the network contract
        of DESIGN.md): ``i`` takes ``spec.in_beat`` elements per transfer, ``o`` gives the whole
        output vector; and, when ``spec.load_words``, the load port ``ld`` (its ``ready`` is respected). It becomes
        a submodule.
    spec : FrameSpec
        The frames (:meth:`FrameSpec.from_manifest` of the network's build).
    divisor : int
        Clock cycles per UART bit.
    idle_timeout : int
        Cycles (rounded up to a multiple of ``2**link_core.IDLE_TICK_BITS``, less up to one such tick:
        proved in :mod:`bp_hw.formal.link_timer`) without a received byte after which a frame that
        stopped half way is given up
        (answered with NAK; an infer frame's missing bytes are fed to the network as zeros so its
        input stream stays aligned, and its output is dropped).
    receiver : optional
        The byte receiver in place of the link's UARTRx (:class:`~bp_hw.boards.link_core.LinkCore`); the
        formal proof of the deframer gives bytes directly. :attr:`core` is the link once elaborated,
        :attr:`deframer` its deframer's FSM (its ``state`` and ``encoding`` are what the proof's
        invariants are stated on).

    Ports
    -----
    rx : In(1)
        Serial input from the host (asynchronous, idles high).
    tx : Out(1)
        Serial output to the host (idles high).
    frame_error : Out(1)
        Pulses on a UART framing error, a receive overrun, a full receive FIFO, a bad CRC or a
        cut-off frame (for an LED).

    Behaviour and latency
    ---------------------
    Received bytes go into a FIFO of ``spec.rx_fifo`` bytes (block RAM), so requests may arrive
    while the network works. The deframer takes them out as fast as the network accepts input:
    each beat of ``in_beat`` elements is handed to ``network.i`` as soon as its last byte is in;
    the last beat of a vector is held until the CRC has been checked, and a tag (kind, ``seq``,
    CRC good) goes into a queue of :data:`TAG_DEPTH` answers. The framer takes the tags in order:
    for an infer frame it waits for the network's output vector and sends a response (good CRC)
    or a NAK (bad CRC: the output is dropped). Load frames are buffered (``LOAD_BLOCK`` words in a
    block RAM), written to ``network.ld`` only after the CRC checks out and no sample is in flight,
    then acknowledged. The wrapper adds a few cycles per beat to the network's latency; the line
    sets the throughput: ``max(request, response) * 10`` bit times per sample with requests
    in flight back to back (:meth:`FrameSpec.line_bound`).
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    frame_error: Out(1)

    #: The idle timer's tick is ``2**tick_bits`` cycles (a subclass shortens it for the formal proof's
    #: covers of the timer: bp_hw.formal.link_timer).
    tick_bits = IDLE_TICK_BITS

    def __init__(self, network: wiring.Component, spec: FrameSpec, divisor: int, idle_timeout: int,
                 receiver=None):
        self.receiver = receiver
        self.network = network
        self.spec = spec
        self.divisor = divisor
        check_idle_timeout(idle_timeout, divisor, self.tick_bits)
        self.idle_timeout = idle_timeout
        members = network.signature.members
        beat = data.Layout.cast(members["i"].signature.members["payload"].shape).size
        if beat != spec.in_beat * spec.in_width:
            raise ValueError(f"network input beat is {beat} bits; the frame spec says {spec.in_beat} x "
                             f"{spec.in_width}")
        if spec.load_words and "ld" not in members:
            raise ValueError("the frame spec has a load image but the network has no load port")
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        net = self.network
        m.submodules.network = net
        self.core = core = LinkCore(m, self.divisor, spec.rx_fifo, self.idle_timeout, self.rx, self.tx,
                                     self.receiver, self.tick_bits)
        m.d.comb += self.frame_error.eq(core.error)
        have, want, take, byte, stuck, flush = core.have, core.want, core.take, core.byte, core.stuck, core.flush
        seq, crc_lo, crc_ok, bad_frame = core.seq, core.crc_lo, core.crc_ok, core.bad_frame
        push = core.push

        # input beats
        beat_bytes = spec.in_beat * spec.in_bytes
        ishreg = Signal(8 * beat_bytes)
        beat_byte = Signal(range(max(beat_bytes, 2)))
        beat_index = Signal(range(max(spec.in_beats, 2)))
        beat_full = Signal()       # ishreg holds a complete beat
        release = Signal()         # ... that may go to the network
        # (read by the formal proof's invariants: bp_hw.formal.link)
        self.beat_state = {"full": beat_full, "release": release, "byte": beat_byte, "index": beat_index}
        for k in range(spec.in_beat):
            base = 8 * spec.in_bytes * k
            m.d.comb += net.i.payload[k].eq(ishreg[base:base + spec.in_width])
        m.d.comb += net.i.valid.eq(beat_full & release)
        with m.If(net.i.valid & net.i.ready):
            m.d.sync += [beat_full.eq(0), release.eq(0)]

        # load frames
        loading = spec.load_words > 0
        if loading:
            lbytes = spec.load_bytes
            m.submodules.load_buffer = lbuf = Memory(shape=spec.load_width, depth=LOAD_BLOCK, init=[])
            lw, lr = lbuf.write_port(), lbuf.read_port()
            laddr = Signal(24)
            lcount = Signal(8)
            lword = Signal(8 * lbytes)
            lbyte = Signal(range(max(lbytes, 3)))
            lindex = Signal(range(LOAD_BLOCK + 1))
            lleft = Signal(range(-1, LOAD_BLOCK))   # words to commit after this one, less one: negative at the last
            m.d.comb += [lw.addr.eq(lindex), lw.data.eq(Cat(lword[8:], byte)), lr.addr.eq(lindex)]
            ld_valid = Signal()
            ld_addr = Signal(spec.load_addr_width)
            ld_stall = Signal()     # a word on the load port that is not taken this cycle
            m.d.comb += [net.ld.valid.eq(ld_valid), net.ld.payload.data.eq(lr.data),
                         net.ld.payload.addr.eq(ld_addr), ld_stall.eq(ld_valid & ~net.ld.ready),
                         lr.en.eq(~ld_stall)]
            with m.If(~ld_stall):
                m.d.sync += ld_valid.eq(0)

        # comparisons on the counters, made where a byte is taken: from registers (LinkCore.settled)
        beat_done, last_beat = core.settled(beat_byte == beat_bytes - 1), core.settled(beat_index == spec.in_beats - 1)
        if loading:
            addr_done, word_done = core.settled(lbyte == 2), core.settled(lbyte == lbytes - 1)
            last_word = core.settled(lindex == lcount - 1)
        is_request = core.byte_is(lambda b: b == SYNC_REQUEST)
        is_info = core.byte_is(lambda b: b == INFO)
        if loading:
            is_load = core.byte_is(lambda b: b == LOAD)
            bad_count = core.byte_is(lambda b: (b == 0) | (b > LOAD_BLOCK))
        with m.FSM(name="deframe") as self.deframer:
            with m.State("HUNT"):
                m.d.comb += want.eq(have & core.room)
                with m.If(take):
                    core.restart_crc()
                    with m.If(is_request):
                        m.next = "SEQ"
                    if loading:
                        with m.If(is_load):
                            m.next = "L_SEQ"
                    with m.If(is_info):
                        push(_INFO)
            for name, after in (("SEQ", "PAYLOAD"),) + ((("L_SEQ", "L_ADDR"),) if loading else ()):
                with m.State(name):
                    m.d.comb += want.eq(have)
                    with m.If(take):
                        m.d.sync += [seq.eq(byte), beat_byte.eq(0), beat_index.eq(0)]
                        if loading:
                            m.d.sync += lbyte.eq(0)
                        m.next = after
                    with m.Elif(stuck & core.room):
                        core.refuse()
                        m.next = "HUNT"
            with m.State("PAYLOAD"):
                m.d.comb += want.eq(have & ~beat_full)
                with m.If(take):
                    m.d.sync += [ishreg.eq(Cat(ishreg[8:], byte)), beat_byte.eq(beat_byte + 1)]
                    with m.If(beat_done):
                        m.d.sync += [beat_byte.eq(0), beat_full.eq(1), beat_index.eq(beat_index + 1)]
                        with m.If(last_beat):
                            m.next = "CRC0"         # the last beat waits for the CRC
                        with m.Else():
                            m.d.sync += release.eq(1)
                with m.Elif(stuck):
                    m.d.sync += [flush.eq(1), bad_frame.eq(1)]
            with m.State("CRC0"):
                core.skip_crc()
                m.d.comb += want.eq(have)
                with m.If(take):
                    m.d.sync += crc_lo.eq(byte)
                    m.next = "CRC1"
                with m.Elif(stuck):
                    m.d.sync += [flush.eq(1), bad_frame.eq(1)]
            with m.State("CRC1"):
                core.skip_crc()
                m.d.comb += want.eq(have & core.room)
                with m.If(take):
                    push(_INFER, crc_ok)
                    m.d.comb += core.vec_in.eq(1)
                    m.d.sync += [release.eq(1), flush.eq(0)]
                    with m.If(~crc_ok):
                        m.d.sync += bad_frame.eq(1)
                    m.next = "HUNT"
                with m.Elif(stuck):
                    m.d.sync += [flush.eq(1), bad_frame.eq(1)]
            if loading:
                # --- load frames: words into the buffer, then (good CRC, nothing in flight) onto ld
                def give_up():
                    with m.Elif(stuck & core.room):
                        core.refuse()
                        m.next = "HUNT"

                with m.State("L_ADDR"):
                    m.d.comb += want.eq(have)
                    with m.If(take):
                        m.d.sync += [laddr.eq(Cat(laddr[8:], byte)), lbyte.eq(lbyte + 1)]
                        with m.If(addr_done):
                            m.d.sync += lbyte.eq(0)
                            m.next = "L_COUNT"
                    give_up()
                with m.State("L_COUNT"):
                    m.d.comb += want.eq(have & core.room)
                    with m.If(take):
                        m.d.sync += [lcount.eq(byte), lindex.eq(0)]
                        with m.If(bad_count):
                            core.refuse()
                            m.next = "HUNT"
                        with m.Else():
                            m.next = "L_DATA"
                    give_up()
                with m.State("L_DATA"):
                    m.d.comb += want.eq(have)
                    with m.If(take):
                        m.d.sync += [lword.eq(Cat(lword[8:], byte)), lbyte.eq(lbyte + 1)]
                        with m.If(word_done):
                            m.d.comb += lw.en.eq(1)
                            m.d.sync += [lbyte.eq(0), lindex.eq(lindex + 1)]
                            with m.If(last_word):
                                m.next = "L_CRC0"
                    give_up()
                with m.State("L_CRC0"):
                    core.skip_crc()
                    m.d.comb += want.eq(have)
                    with m.If(take):
                        m.d.sync += crc_lo.eq(byte)
                        m.next = "L_CRC1"
                    give_up()
                with m.State("L_CRC1"):
                    core.skip_crc()
                    m.d.comb += want.eq(have & core.room)
                    with m.If(take):
                        with m.If(crc_ok):
                            m.next = "L_WAIT"
                        with m.Else():
                            core.refuse()
                            m.next = "HUNT"
                    give_up()
                with m.State("L_WAIT"):
                    # The weight memories are single-port: write only while no sample is in flight.
                    with m.If(core.inflight == 0):
                        m.d.sync += [lindex.eq(0), ld_addr.eq(laddr), lleft.eq(lcount - 2)]
                        m.next = "L_COMMIT"
                with m.State("L_COMMIT"):
                    # Read word lindex now; it is on the load port the next cycle, at ld_addr, and
                    # stays there (the read port held) until the port takes it.
                    with m.If(~ld_stall):
                        m.d.sync += [ld_valid.eq(1), lindex.eq(lindex + 1), lleft.eq(lleft - 1)]
                        with m.If(ld_valid):
                            m.d.sync += ld_addr.eq(ld_addr + 1)
                        with m.If(lleft[-1]):
                            m.next = "L_ACK"
                with m.State("L_ACK"):
                    with m.If(~ld_stall & core.room):
                        push(_ACK)
                        m.next = "HUNT"

        self._framer(m, core, spec, net)
        return m

    def _framer(self, m, core, spec, net):
        """Answers, in tag order: responses (or NAKs) for infer frames, ACK/NAK frames, info frames.

        The network's output goes into the output shift register as soon as it is free (not when its
        answer starts): the register's load and shift are enabled from the network's handshake and
        the framer's registered ``sent``, never from the framer's state decoding."""
        n_out_bytes = spec.n_out * spec.out_bytes
        oshreg = Signal(8 * n_out_bytes)
        out_full = Signal()         # oshreg holds an output whose answer is not sent yet
        left = Signal(range(n_out_bytes + 1))
        m.d.comb += [net.o.ready.eq(~out_full), core.vec_out.eq(net.o.valid & net.o.ready)]
        with m.If(net.o.valid & net.o.ready):
            m.d.sync += out_full.eq(1)
            for k in range(spec.n_out):
                base = 8 * spec.out_bytes * k
                # A signed element is sign-extended to whole bytes by the assignment.
                m.d.sync += oshreg[base:base + 8 * spec.out_bytes].eq(net.o.payload[k])

        def start(tag, begin, begin_info):
            with m.Switch(tag.kind):
                with m.Case(_INFER):
                    with m.If(out_full):
                        with m.If(tag.ok):
                            m.d.sync += left.eq(n_out_bytes)
                        with m.Else():
                            m.d.sync += out_full.eq(0)       # a NAK: the output is dropped
                        begin(Mux(tag.ok, SYNC_RESPONSE, NAK), n_out_bytes)
                with m.Case(_ACK):
                    begin(ACK, 0)
                with m.Case(_INFO):
                    begin_info()

        sent = core.framer(spec.info_response(), start, oshreg[:8])
        with m.If(sent):
            m.d.sync += [oshreg.eq(oshreg >> 8), left.eq(left - 1)]
            with m.If(left == 1):
                m.d.sync += out_full.eq(0)
