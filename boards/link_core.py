"""What every board link shares: the UART, the receive FIFO, the idle timer, the byte source, CRC-16,
the queue of answers, and the framer that sends them (used by :mod:`bp_hw.boards.uart_wrapper` and
:mod:`bp_hw.boards.train_wrapper`)."""

import operator
from functools import reduce

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, fifo

from bp_hw.hdl.uart import UARTRx, UARTTx

from .frame import CRC_INIT, NAK, TAG_BITS, TAG_DEPTH, crc16_byte

__all__ = ["IDLE_TICK_BITS", "TAG_DEPTH", "TAG", "crc16_update", "LinkCore"]

#: The idle timer advances every 2**IDLE_TICK_BITS cycles.
IDLE_TICK_BITS = 10
#: One queued answer: what to send (the wrapper's own kinds), the request's seq, and whether its CRC was good.
TAG = data.StructLayout({"kind": 3, "seq": 8, "ok": 1})
assert TAG.size == TAG_BITS


def crc16_update(crc: Value, byte: Value) -> Value:
    """Combinational CRC-16/CCITT-FALSE step: the CRC after feeding ``byte``.

    One CRC step is linear over GF(2) in (crc, byte), so each output bit is the XOR of the input bits
    whose unit vectors the spec's :func:`~bp_hw.boards.frame.crc16_byte` maps onto it: 16 XOR trees
    of at most 24 inputs, derived from the spec rather than written out again.
    """
    columns = [crc16_byte(1 << j, 0) for j in range(16)] + [crc16_byte(0, 1 << j) for j in range(8)]
    bits = Cat(crc, byte)
    out = []
    for i in range(16):
        terms = [bits[j] for j, column in enumerate(columns) if column >> i & 1]
        out.append(reduce(operator.xor, terms))
    return Cat(*out)


def check_idle_timeout(idle_timeout: int, divisor: int, tick_bits: int = IDLE_TICK_BITS) -> None:
    if idle_timeout < max(20 * divisor, 2 << tick_bits):
        raise ValueError(f"idle timeout of {idle_timeout} cycles is shorter than two bytes ({20 * divisor}) "
                         f"or two timer ticks ({2 << tick_bits})")


class LinkCore:
    """The shared part of a link, built into module ``m`` (not a component: its signals are the
    wrapper's own state, read and driven by the wrapper's deframer and framer).

    Receive side: ``rx_pin`` -> :class:`UARTRx` -> a FIFO of ``fifo_depth`` bytes. The deframer reads
    :attr:`byte` when :attr:`have` and drives :attr:`want` to consume it; it is consumed the cycle
    after, where :attr:`take` (a register) is high, and the deframer makes its updates under
    :attr:`take`. Comparisons on the byte come from registers (:meth:`byte_is`, :attr:`crc_ok`). With :attr:`flush` set the
    byte source gives zeros instead (to complete a cut-off frame). :attr:`stuck` is high when the FIFO
    is empty and no byte has arrived for ``idle_timeout`` cycles, rounded up to whole ticks of
    ``2**tick_bits`` cycles, less up to one tick (``ticks * 2**tick_bits`` cycles after the last byte
    at the latest, ``2**tick_bits - 1`` fewer at the earliest: proved in
    :mod:`bp_hw.formal.link_timer`). :attr:`crc` is the running CRC of the bytes taken (a cycle behind;
    :meth:`restart_crc`, :meth:`skip_crc`); :attr:`crc_ok` compares ``crc_lo`` (the CRC's first byte,
    kept by the deframer) and :attr:`byte` with it (a CRC's second byte comes at least four cycles after
    the last byte it covers, so the CRC has caught up). :meth:`push` queues an answer tag with the current :attr:`seq` (where :attr:`room` is high).
    :attr:`inflight` counts samples handed to the network whose output is not taken (the wrapper
    pulses :attr:`vec_in` / :attr:`vec_out`). :attr:`error` pulses on a UART framing error or overrun,
    a full FIFO, or :attr:`bad_frame` (set by the deframer).

    Send side: :meth:`framer` builds the framer FSM.

    ``receiver`` replaces the :class:`UARTRx` (a component with its ports ``rx``, ``o``,
    ``frame_error``, ``overrun``): the formal proof of the deframer gives it bytes directly.
    ``tick_bits``: the idle timer's tick is ``2**tick_bits`` cycles (:data:`IDLE_TICK_BITS`; the
    proof of the timer's bounds reaches its covers with shorter ticks).
    """

    def __init__(self, m: Module, divisor: int, fifo_depth: int, idle_timeout: int, rx_pin, tx_pin,
                 receiver=None, tick_bits: int = IDLE_TICK_BITS):
        check_idle_timeout(idle_timeout, divisor, tick_bits)
        self.m = m
        # the byte receiver: a UARTRx, or one with its ports (rx, o, frame_error, overrun) that delivers
        # bytes another way (the formal proof of the deframer feeds them directly: bp_hw.formal.link)
        m.submodules.rx = rx = UARTRx(divisor) if receiver is None else receiver
        m.submodules.tx = self.tx = UARTTx(divisor)
        m.submodules.rx_fifo = self.rx_fifo = rxq = fifo.SyncFIFOBuffered(width=8, depth=fifo_depth)
        # Buffered: its r_rdy and r_data come from registers, so the framer does not start at pointer compares.
        m.submodules.tags = self.tags = tags = fifo.SyncFIFOBuffered(width=TAG.size, depth=TAG_DEPTH)
        m.d.comb += [rx.rx.eq(rx_pin), tx_pin.eq(self.tx.tx)]

        overflow = Signal()
        m.d.comb += [rxq.w_data.eq(rx.o.payload), rxq.w_en.eq(rx.o.valid), rx.o.ready.eq(1),
                     overflow.eq(rx.o.valid & ~rxq.w_rdy)]
        # The idle timer counts ticks of 2**tick_bits cycles: two short counters, no long carry chain.
        tick = Signal()
        prescale = Signal(tick_bits)
        m.d.sync += [prescale.eq(prescale + 1), tick.eq(prescale == 0)]
        ticks = -(-idle_timeout // (1 << tick_bits))
        idle = Signal(range(-1, ticks))      # expires (sign bit) at the ticks-th tick after the last byte
        with m.If(rx.o.valid):
            m.d.sync += idle.eq(ticks - 1)
        with m.Elif(tick & ~idle[-1]):
            m.d.sync += idle.eq(idle - 1)
        #: The idle timer's registers (the formal proof of its bounds reads them: bp_hw.formal.link_timer).
        self.idle_timer = {"prescale": prescale, "tick": tick, "count": idle, "ticks": ticks, "tick_bits": tick_bits}
        # The deframer reads a byte register filled from the FIFO (its read logic stays off the deframer's paths;
        # a byte then takes at least two cycles, against 10 bit times on the line).
        cur, cur_valid = Signal(8), Signal()
        self.stuck = Signal()
        m.d.comb += self.stuck.eq(idle[-1] & ~rxq.r_rdy & ~cur_valid)
        self.bad_frame = Signal()
        m.d.sync += self.bad_frame.eq(0)
        self.error = Signal()
        m.d.comb += self.error.eq(rx.frame_error | rx.overrun | overflow | self.bad_frame)

        self.inflight = Signal(range(TAG_DEPTH + 2))
        self.vec_in, self.vec_out = Signal(), Signal()
        m.d.sync += self.inflight.eq(self.inflight + self.vec_in - self.vec_out)

        # A push is registered and written a cycle later (the deframer's decisions stay off the FIFO's
        # write logic); "room" is registered too: at least three free when it is computed, so with one
        # push a cycle and each written a cycle late, a push where room is high always finds a slot.
        self.room = Signal()
        m.d.sync += self.room.eq(tags.level < TAG_DEPTH - 2)
        self.tag_in = Signal(TAG)
        self.tag_push = Signal()
        # push() drives these; the tag register takes them every cycle (no enable from the deframer's decisions).
        self._push, self._kind, self._ok = Signal(), Signal(TAG.members["kind"]), Signal()
        m.d.sync += [self.tag_push.eq(self._push), self.tag_in.kind.eq(self._kind), self.tag_in.ok.eq(self._ok)]
        self.tag = Signal(TAG)
        m.d.comb += [tags.w_data.eq(self.tag_in), tags.w_en.eq(self.tag_push), self.tag.eq(tags.r_data)]

        self.flush = Signal()
        self.byte = Signal(8)
        self.have = Signal()
        # The deframer drives want where it would take the offered byte; the byte is taken (take) the
        # cycle after, a register: nothing the deframer decides on changes in between (the byte, its
        # flags, the state), and every update the deframer makes on a take is enabled from a flip-flop.
        self.want = Signal()
        self.take = Signal()
        m.d.sync += self.take.eq(self.want & ~self.take)
        # A byte is offered (have) one cycle after it reaches cur: in that cycle every comparison the
        # deframer makes on it (byte_is, crc_ok) is computed into a register, so the deframer's
        # decisions start at flip-flops. A byte takes four cycles at least (with want and take).
        self._cur = cur
        cur_ready = Signal()
        self.cur_valid, self.cur_ready = cur_valid, cur_ready     # a byte in cur; ... offered (have)
        m.d.comb += [self.byte.eq(Mux(self.flush, 0, cur)), self.have.eq(self.flush | cur_ready),
                     rxq.r_en.eq(rxq.r_rdy & ~cur_valid)]
        with m.If(rxq.r_en):
            m.d.sync += [cur.eq(rxq.r_data), cur_valid.eq(1)]
        with m.Elif(self.take & ~self.flush):
            m.d.sync += [cur_valid.eq(0), cur_ready.eq(0)]
        with m.Elif(cur_valid):
            m.d.sync += cur_ready.eq(1)

        # The CRC runs a cycle behind the deframer: every byte it takes goes in (but where it drives
        # crc_skip: a frame's first byte and its CRC bytes); crc_restart starts a frame's CRC (a cycle
        # later too: the frame's first byte is skipped and the next one comes three cycles later at the earliest).
        self.seq = Signal(8)
        m.d.sync += self.tag_in.seq.eq(self.seq)
        self.crc = Signal(16)
        self.crc_skip = Signal()
        self.crc_restart = Signal()
        feed, fed, restart = Signal(), Signal(8), Signal()
        m.d.sync += [feed.eq(self.take & ~self.crc_skip), fed.eq(self.byte), restart.eq(self.crc_restart)]
        #: The CRC once the bytes taken so far are in (what :attr:`crc` is two cycles after a take).
        self.crc_settled = Mux(restart, CRC_INIT, Mux(feed, crc16_update(self.crc, fed), self.crc))
        with m.If(restart):
            m.d.sync += self.crc.eq(CRC_INIT)
        with m.Elif(feed):
            m.d.sync += self.crc.eq(crc16_update(self.crc, fed))
        # crc_lo is taken at least a byte earlier and the CRC is final two cycles after the last
        # payload byte, so the comparison registered from cur is valid when the CRC's second byte is offered.
        self.crc_lo = Signal(8)
        self.crc_ok = Signal()
        crc_match = Signal()
        m.d.sync += crc_match.eq(Cat(self.crc_lo, cur) == self.crc)
        m.d.comb += self.crc_ok.eq(crc_match & ~self.flush)

    def settled(self, value: Value) -> Signal:
        """``value`` from a register, for a comparison the deframer makes where it takes a byte on
        counters it changes only where it takes one: a take comes at least two cycles after the last,
        so the register has caught up. Call it outside the deframer's FSM (its register updates every cycle)."""
        flag = Signal()
        self.m.d.sync += flag.eq(value)
        return flag

    def byte_is(self, test) -> Value:
        """``test(byte)`` (a 1-bit expression of the offered byte) from a register: computed in
        the cycle before the byte is offered, false while the deframer is flushing. Call it outside
        the deframer's FSM."""
        flag = Signal()
        self.m.d.sync += flag.eq(test(self._cur))
        return flag & ~self.flush

    def restart_crc(self):
        """Start a new frame's CRC (where the deframer takes a frame's first byte)."""
        self.m.d.comb += [self.crc_restart.eq(1), self.crc_skip.eq(1)]

    def skip_crc(self):
        """The byte taken now is not part of the CRC (a CRC byte)."""
        self.m.d.comb += self.crc_skip.eq(1)

    def push(self, kind, ok=0):
        """Queue an answer (only where the deframer has checked :attr:`room`)."""
        self.m.d.comb += [self._kind.eq(kind), self._ok.eq(ok), self._push.eq(1)]

    #: The tag kind that sends ``EE seq``.
    NAK_KIND = 0b111

    def refuse(self):
        """Answer the current frame with NAK and count the error (where :attr:`room` was checked;
        the caller moves to its hunt state)."""
        self.push(self.NAK_KIND)
        self.m.d.sync += self.bad_frame.eq(1)

    def framer(self, info: bytes, start, payload_byte: Value) -> Signal:
        """The framer FSM: takes tags in order and sends their answers.

        ``start(tag, begin, begin_info)`` is called in the START state with the tag just taken from the
        queue (a register), unless it is of :attr:`NAK_KIND` (which sends ``EE seq``). It calls
        ``begin(head, nbytes)`` under the condition that the answer can start (START repeats until then): ``head`` the first byte, then ``seq``, then ``nbytes``
        payload bytes (an int or a signal below 256; 0 for none) and the CRC; or ``begin_info()`` to
        send ``info``. The payload bytes are ``payload_byte``, which the wrapper
        drives; the returned signal pulses the cycle after each one is sent (the wrapper then moves
        to the next).
        """
        m, tx, tags, tag = self.m, self.tx, self.tags, self.tag
        cur = Signal(TAG)
        head = Signal(8)
        oseq = Signal(8)
        count = Signal(8)
        ocrc = Signal(16)
        sent = Signal()
        info_index = Signal(range(len(info)))
        # The framer's decisions on its counters, and the info byte, come from registers: those
        # change where a byte is sent (or in START), at least two cycles before the next decision on
        # them (a frame's first two bytes go into the transmitter a cycle apart, later ones a byte time apart).
        info_byte, info_last = Signal(8), Signal()
        no_payload, last_payload, nak_head = Signal(), Signal(), Signal()
        m.d.sync += [info_last.eq(info_index == len(info) - 1), no_payload.eq(count == 0),
                     last_payload.eq(count == 1), nak_head.eq(head == NAK)]
        index_copy = Signal.like(info_index)     # the lookup reads a copy next to it (two cycles, not one)
        m.d.sync += index_copy.eq(info_index)
        with m.Switch(index_copy):
            for k, value in enumerate(info):
                with m.Case(k):
                    m.d.sync += info_byte.eq(value)

        def send(value):
            m.d.comb += [tx.i.payload.eq(value), tx.i.valid.eq(1)]

        with m.FSM(name="frame"):
            with m.State("IDLE"):
                # Pop the next tag into a register; the answer starts from it the next cycle (so the
                # decisions below start at flip-flops, not at the queue's read logic).
                m.d.comb += tags.r_en.eq(tags.r_rdy)
                with m.If(tags.r_rdy):
                    m.d.sync += [cur.eq(tag), oseq.eq(tag.seq), ocrc.eq(CRC_INIT)]
                    m.next = "START"
            with m.State("START"):
                with m.If(cur.kind == self.NAK_KIND):
                    m.d.sync += head.eq(NAK)
                    m.next = "HEAD"
                with m.Else():
                    def begin(h, nbytes):
                        m.d.sync += [head.eq(h), count.eq(nbytes)]
                        m.next = "HEAD"

                    def begin_info():
                        m.d.sync += info_index.eq(0)
                        m.next = "INFO_WAIT"
                    start(cur, begin, begin_info)
            with m.State("HEAD"):
                send(head)
                with m.If(tx.i.ready):
                    m.next = "SEQ"
            with m.State("SEQ"):
                send(oseq)
                with m.If(tx.i.ready):
                    m.d.sync += ocrc.eq(crc16_update(ocrc, oseq))
                    with m.If(nak_head):
                        m.next = "IDLE"
                    with m.Elif(~no_payload):
                        m.next = "PAYLOAD"
                    with m.Else():
                        m.next = "CRC0"
            with m.State("PAYLOAD"):
                send(payload_byte)
                with m.If(tx.i.ready):
                    m.d.comb += sent.eq(1)
                    m.d.sync += [ocrc.eq(crc16_update(ocrc, payload_byte)), count.eq(count - 1)]
                    with m.If(last_payload):
                        m.next = "CRC0"
            with m.State("CRC0"):
                send(ocrc[:8])
                with m.If(tx.i.ready):
                    m.next = "CRC1"
            with m.State("CRC1"):
                send(ocrc[8:])
                with m.If(tx.i.ready):
                    m.next = "IDLE"
            # info_byte follows info_index two cycles later; the transmitter's buffer can take the
            # next byte the cycle after one, so every info byte waits out those two cycles
            with m.State("INFO_WAIT"):
                m.next = "INFO_SETTLE"
            with m.State("INFO_SETTLE"):
                m.next = "INFO"
            with m.State("INFO"):
                send(info_byte)
                with m.If(tx.i.ready):
                    m.d.sync += info_index.eq(info_index + 1)
                    with m.If(info_last):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "INFO_WAIT"
        # Registered: the wrapper's payload shift is enabled from a flip-flop (the next payload byte is
        # sent a whole byte time later).
        moved = Signal()
        m.d.sync += moved.eq(sent)
        return moved
