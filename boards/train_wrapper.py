"""Gateware that serves an on-chip training network over a UART (:class:`~bp_hw.boards.frame.TrainFrameSpec`)."""


from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .frame import ACK, INFO, LOAD_BLOCK, READ, SYNC_REQUEST, SYNC_RESPONSE, TRAIN, WRITE, TrainFrameSpec
from .link_core import IDLE_TICK_BITS, LinkCore, check_idle_timeout

__all__ = ["TrainUART"]

_SAMPLE, _ACK, _READ, _INFO, _REPLAY = range(5)


class TrainUART(wiring.Component):
    """Serves a :class:`~bp_hw.hdl.backprop.TrainNetwork` over a UART: infer and train samples, parameter
    writes and reads, info (the frames of :class:`TrainFrameSpec`).

    Parameters
    ----------
    network : TrainCrossing
        The training network behind its :class:`~bp_hw.boards.crossing.TrainCrossing`: ports ``i``
        (``x``, ``t``, ``train``), ``o``, ``acc`` (access requests) and ``rd`` (read values). A submodule.
    spec : TrainFrameSpec
        The frames (:meth:`TrainFrameSpec.from_manifest` of the network's build).
    divisor, idle_timeout : int
        Cycles per UART bit; cycles of silence after which a frame stopped half way is refused (as
        :class:`~bp_hw.boards.uart_wrapper.NetworkUART`'s: rounded up to whole timer ticks, less up to one).
    receiver : optional
        The byte receiver in place of the link's UARTRx (:class:`~bp_hw.boards.link_core.LinkCore`).
        Once elaborated, :attr:`core` is the link and :attr:`deframer` its deframer's FSM (the formal
        proof's invariants are stated on its ``state``).

    Ports
    -----
    rx : In(1), tx : Out(1)
        The serial lines (8N1, idle high).
    frame_error : Out(1)
        Pulses on a framing error, overrun, full FIFO, bad CRC or cut-off frame.

    Behaviour
    ---------
    A sample frame's bytes go into a register of ``x`` then ``t`` (an infer frame's ``t`` is zero); when
    its CRC is good the sample is offered to ``network.i`` (``train`` = 1 for a train frame) and its answer
    is the network's output vector; a bad CRC trains nothing and is answered with NAK. Write frames are
    buffered (``LOAD_BLOCK`` values in block RAM) and sent as requests on ``acc`` only after a good CRC
    (the crossing keeps them behind every earlier sample and performs them when the network is idle).
    Read frames send ``count`` read requests at the same point of the stream (so they see every earlier
    frame's effect) and put the values coming back on ``rd`` into a read-back buffer the framer sends from. Answers go out in the order of the frames. A train frame that comes again with the seq of
    the last one trained (the host resends it when the answer was lost) is not trained again: it is
    answered with that sample's outputs, kept for the purpose.
    """

    rx: In(1, init=1)
    tx: Out(1, init=1)
    frame_error: Out(1)

    #: The idle timer's tick is ``2**tick_bits`` cycles (a subclass shortens it for the formal proof's
    #: covers of the timer: bp_hw.formal.link_timer).
    tick_bits = IDLE_TICK_BITS

    def __init__(self, network, spec: TrainFrameSpec, divisor: int, idle_timeout: int, receiver=None):
        self.receiver = receiver
        check_idle_timeout(idle_timeout, divisor, self.tick_bits)
        self.network = network
        self.spec = spec
        self.divisor = divisor
        self.idle_timeout = idle_timeout
        if spec.n_out * spec.out_bytes > 255 or LOAD_BLOCK * spec.param_bytes > 255:
            raise ValueError("a response or read-back frame of more than 255 payload bytes")
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        spec, net = self.spec, self.network
        m.submodules.network = net
        self.core = core = LinkCore(m, self.divisor, spec.rx_fifo, self.idle_timeout, self.rx, self.tx,
                                     self.receiver, self.tick_bits)
        m.d.comb += self.frame_error.eq(core.error)
        have, want, take, byte, stuck = core.have, core.want, core.take, core.byte, core.stuck
        seq, crc_lo, crc_ok = core.seq, core.crc_lo, core.crc_ok
        pb = spec.param_bytes

        # --- the sample register: x bytes then t bytes, shifted in; offered until the network takes it
        xb, tb = spec.n_in * spec.in_bytes, spec.n_out * spec.target_bytes
        shreg = Signal(8 * (xb + tb))
        nbyte = Signal(range(xb + tb + 1))
        training = Signal()
        offer = Signal()
        for k in range(spec.n_in):
            m.d.comb += net.i.payload.x[k].eq(shreg[8 * spec.in_bytes * k:][:spec.in_width])
        for k in range(spec.n_out):
            m.d.comb += net.i.payload.t[k].eq(shreg[8 * (xb + spec.target_bytes * k):][:spec.target_width])
        m.d.comb += [net.i.payload.train.eq(training), net.i.valid.eq(offer)]
        with m.If(net.i.valid & net.i.ready):
            m.d.sync += offer.eq(0)
        # (read by the formal proof's invariants: bp_hw.formal.link)
        self.sample_state = {"shreg": shreg, "nbyte": nbyte, "training": training, "offer": offer}
        # The last train frame's seq: the same frame sent again (its answer was lost) is answered from the
        # outputs kept, not trained a second time.
        last_seq, last_valid = Signal(8), Signal()

        # --- parameter frames: a write buffer and a read-back buffer
        m.submodules.write_buffer = wbuf = Memory(shape=spec.param_width, depth=LOAD_BLOCK, init=[])
        m.submodules.read_buffer = rbuf = Memory(shape=spec.param_width, depth=LOAD_BLOCK, init=[])
        ww, wr = wbuf.write_port(), wbuf.read_port()
        rw, rr = rbuf.write_port(), rbuf.read_port()
        paddr = Signal(16)
        pcount = Signal(8)
        pword = Signal(8 * pb)
        pbyte = Signal(range(max(pb, 2)))
        pindex = Signal(range(LOAD_BLOCK + 1))
        m.d.comb += [ww.addr.eq(pindex), ww.data.eq(Cat(pword[8:], byte)), wr.addr.eq(pindex)]
        # access requests: word pindex of the write buffer is read when a request is issued and is on
        # acc the next cycle, held there (the read port too) until the crossing takes it
        req = net.acc
        a_valid, a_we = Signal(), Signal()
        a_addr = Signal.like(req.payload.addr)
        a_stall = Signal()
        m.d.comb += [req.valid.eq(a_valid), req.payload.addr.eq(a_addr), req.payload.we.eq(a_we),
                     req.payload.wdata.eq(wr.data), a_stall.eq(a_valid & ~req.ready), wr.en.eq(~a_stall)]
        with m.If(~a_stall):
            m.d.sync += a_valid.eq(0)
        # read values come back in order into the read-back buffer
        ridx = Signal(range(LOAD_BLOCK + 1))
        m.d.comb += [net.rd.ready.eq(1), rw.addr.eq(ridx), rw.data.eq(net.rd.payload), rw.en.eq(net.rd.valid)]
        with m.If(net.rd.valid):
            m.d.sync += ridx.eq(ridx + 1)
        rb_pending = Signal()     # the read-back buffer holds values the framer has not sent yet
        rb_count = Signal(8)

        def give_up():
            with m.Elif(stuck & core.room):
                core.refuse()
                m.next = "HUNT"

        is_request, is_train, is_write, is_read, is_info = (
            core.byte_is(lambda b, c=c: b == c) for c in (SYNC_REQUEST, TRAIN, WRITE, READ, INFO))
        bad_count = core.byte_is(lambda b: (b == 0) | (b > LOAD_BLOCK))
        # comparisons on the counters, made where a byte is taken: from registers (LinkCore.settled)
        sample_done, x_done = core.settled(nbyte == xb + tb - 1), core.settled(nbyte == xb - 1)
        same_seq = core.settled(seq == last_seq)
        addr_done, word_done = core.settled(pbyte == 1), core.settled(pbyte == pb - 1)
        last_word = core.settled(pindex == pcount - 1)
        with m.FSM(name="deframe") as self.deframer:
            with m.State("HUNT"):
                m.d.comb += want.eq(have & core.room)
                with m.If(take):
                    core.restart_crc()
                    m.d.sync += [nbyte.eq(0), pbyte.eq(0), pindex.eq(0)]
                    with m.If(is_request | is_train):
                        m.d.sync += training.eq(is_train)
                        m.next = "S_SEQ"
                    with m.If(is_write):
                        m.next = "W_SEQ"
                    with m.If(is_read):
                        m.next = "R_SEQ"
                    with m.If(is_info):
                        core.push(_INFO)
            for name, after in (("S_SEQ", "S_DATA"), ("W_SEQ", "P_ADDR"), ("R_SEQ", "R_ADDR")):
                with m.State(name):
                    m.d.comb += want.eq(have & (~offer if name == "S_SEQ" else 1))
                    with m.If(take):
                        m.d.sync += [seq.eq(byte)]
                        m.next = after
                    give_up()
            with m.State("S_DATA"):
                m.d.comb += want.eq(have)
                with m.If(take):
                    m.d.sync += [shreg.eq(Cat(shreg[8:], byte)), nbyte.eq(nbyte + 1)]
                    with m.If(training & sample_done):
                        m.next = "S_CRC0"
                    with m.If(~training & x_done):
                        m.next = "S_PAD"
                give_up()
            with m.State("S_PAD"):
                # An infer frame has no target: shift zeros in its place, so x sits where a train frame's does.
                m.d.sync += [shreg.eq(Cat(shreg[8:], 0)), nbyte.eq(nbyte + 1)]
                with m.If(nbyte == xb + tb - 1):
                    m.next = "S_CRC0"
            with m.State("S_CRC0"):
                core.skip_crc()
                m.d.comb += want.eq(have)
                with m.If(take):
                    m.d.sync += crc_lo.eq(byte)
                    m.next = "S_CRC1"
                give_up()
            with m.State("S_CRC1"):
                core.skip_crc()
                m.d.comb += want.eq(have & core.room)
                with m.If(take):
                    with m.If(crc_ok & training & last_valid & same_seq):
                        core.push(_REPLAY)          # sent again: it trained once already; answer again
                    with m.Elif(crc_ok):
                        core.push(_SAMPLE, training)
                        m.d.comb += core.vec_in.eq(1)
                        m.d.sync += offer.eq(1)
                        with m.If(training):
                            m.d.sync += [last_seq.eq(seq), last_valid.eq(1)]
                    with m.Else():
                        core.refuse()
                    m.next = "HUNT"
                give_up()
            # parameter frames: address (2 bytes), count
            for name, after in (("P_ADDR", "P_COUNT"), ("R_ADDR", "R_COUNT")):
                with m.State(name):
                    m.d.comb += want.eq(have)
                    with m.If(take):
                        m.d.sync += [paddr.eq(Cat(paddr[8:], byte)), pbyte.eq(pbyte + 1)]
                        with m.If(addr_done):
                            m.d.sync += pbyte.eq(0)
                            m.next = after
                    give_up()
            for name, after in (("P_COUNT", "W_DATA"), ("R_COUNT", "P_CRC0")):
                with m.State(name):
                    m.d.comb += want.eq(have & core.room)
                    with m.If(take):
                        m.d.sync += [pcount.eq(byte), pindex.eq(0)]
                        with m.If(bad_count):
                            core.refuse()
                            m.next = "HUNT"
                        with m.Else():
                            m.next = after
                    give_up()
            with m.State("W_DATA"):
                m.d.comb += want.eq(have)
                with m.If(take):
                    m.d.sync += [pword.eq(Cat(pword[8:], byte)), pbyte.eq(pbyte + 1)]
                    with m.If(word_done):
                        m.d.comb += ww.en.eq(1)
                        m.d.sync += [pbyte.eq(0), pindex.eq(pindex + 1)]
                        with m.If(last_word):
                            m.next = "W_CRC0"
                give_up()
            for crc0, crc1, good in (("W_CRC0", "W_CRC1", "W_WAIT"), ("P_CRC0", "P_CRC1", "R_WAIT")):
                with m.State(crc0):
                    core.skip_crc()
                    m.d.comb += want.eq(have)
                    with m.If(take):
                        m.d.sync += crc_lo.eq(byte)
                        m.next = crc1
                    give_up()
                with m.State(crc1):
                    core.skip_crc()
                    m.d.comb += want.eq(have & core.room)
                    with m.If(take):
                        with m.If(crc_ok):
                            m.next = good
                        with m.Else():
                            core.refuse()
                            m.next = "HUNT"
                    give_up()
            with m.State("W_WAIT"):
                # the sample before goes first (it is offered until the crossing takes it)
                with m.If(~offer):
                    m.d.sync += pindex.eq(0)
                    m.next = "W_ISSUE"
            for issue, after, write in (("W_ISSUE", "W_ACK", 1), ("R_ISSUE", "R_DRAIN", 0)):
                with m.State(issue):
                    with m.If(~a_stall):
                        m.d.sync += [a_valid.eq(1), a_we.eq(write), a_addr.eq(paddr + pindex),
                                     pindex.eq(pindex + 1)]
                        if write:
                            m.d.sync += last_valid.eq(0)
                        with m.If(pindex == pcount - 1):
                            m.next = after
            with m.State("W_ACK"):
                with m.If(~a_stall & core.room):
                    core.push(_ACK)
                    m.next = "HUNT"
            with m.State("R_WAIT"):
                with m.If(~offer & ~rb_pending):
                    m.d.sync += [pindex.eq(0), ridx.eq(0)]
                    m.next = "R_ISSUE"
            with m.State("R_DRAIN"):
                with m.If((ridx == pcount) & core.room):
                    core.push(_READ)
                    m.d.sync += [rb_pending.eq(1), rb_count.eq(pcount)]
                    m.next = "HUNT"

        self._framer(m, core, spec, net, rr, rb_pending, rb_count)
        return m

    def _framer(self, m, core, spec, net, rr, rb_pending, rb_count):
        n_out_bytes = spec.n_out * spec.out_bytes
        pb = spec.param_bytes
        oshreg = Signal(8 * n_out_bytes)
        last_out = Signal(8 * n_out_bytes)      # the outputs of the last train sample, for a replay
        reading = Signal()
        rb_elem = Signal(range(LOAD_BLOCK + 1))
        rb_byte = Signal(range(max(pb, 2)))
        rb_left = Signal(9)
        m.d.comb += [core.vec_out.eq(net.o.valid & net.o.ready), rr.addr.eq(rb_elem)]
        word = Signal(8 * pb)
        m.d.comb += word.eq(rr.data)
        byte_of_word = Signal(8)
        with m.Switch(rb_byte):
            for k in range(pb):
                with m.Case(k):
                    m.d.comb += byte_of_word.eq(word[8 * k:8 * k + 8])

        def start(tag, begin, begin_info):
            with m.Switch(tag.kind):
                with m.Case(_SAMPLE):
                    with m.If(net.o.valid):
                        m.d.comb += net.o.ready.eq(1)
                        for k in range(spec.n_out):
                            base = 8 * spec.out_bytes * k
                            m.d.sync += oshreg[base:base + 8 * spec.out_bytes].eq(net.o.payload[k])
                            with m.If(tag.ok):         # a train sample
                                m.d.sync += last_out[base:base + 8 * spec.out_bytes].eq(net.o.payload[k])
                        m.d.sync += reading.eq(0)
                        begin(SYNC_RESPONSE, n_out_bytes)
                with m.Case(_REPLAY):
                    m.d.sync += [oshreg.eq(last_out), reading.eq(0)]
                    begin(SYNC_RESPONSE, n_out_bytes)
                with m.Case(_ACK):
                    m.d.sync += reading.eq(0)
                    begin(ACK, 0)
                with m.Case(_READ):
                    m.d.sync += [reading.eq(1), rb_elem.eq(0), rb_byte.eq(0), rb_left.eq(rb_count * pb)]
                    begin(READ, rb_count * pb)
                with m.Case(_INFO):
                    begin_info()

        sent = core.framer(spec.info_response(), start, Mux(reading, byte_of_word, oshreg[:8]))
        with m.If(sent):
            m.d.sync += oshreg.eq(oshreg >> 8)
            with m.If(reading):
                m.d.sync += [rb_byte.eq(rb_byte + 1), rb_left.eq(rb_left - 1)]
                with m.If(rb_byte == pb - 1):
                    m.d.sync += [rb_byte.eq(0), rb_elem.eq(rb_elem + 1)]
                with m.If(rb_left == 1):
                    m.d.sync += rb_pending.eq(0)
