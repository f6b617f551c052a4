"""UARTRx / UARTTx in Amaranth's simulator, driven and decoded at the bit level."""

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from bp_hw.boards.serial_sim import receive_bytes, send_bytes
from bp_hw.hdl.uart import UARTRx, UARTTx, _check_divisor, uart_divisor


def run(dut, *testbenches, processes=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)
    for p in processes:
        sim.add_process(p)
    sim.run()


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_rx_receives_back_to_back_bytes(divisor):
    dut = UARTRx(divisor)
    data = bytes([0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80])
    got = []

    async def host(ctx):
        await ctx.tick().repeat(3)
        await send_bytes(ctx, dut.rx, data, divisor)
        await ctx.tick().repeat(2 * divisor)

    async def sink(ctx):
        ctx.set(dut.o.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(dut.o.valid, dut.o.payload):
            if valid:
                got.append(payload)

    run(dut, host, processes=[sink])
    assert bytes(got) == data


def test_rx_flags_framing_error_and_overrun():
    divisor = 5
    dut = UARTRx(divisor)
    flags = {"frame_error": 0, "overrun": 0, "valid_bytes": []}

    async def host(ctx):
        await ctx.tick().repeat(3)
        await send_bytes(ctx, dut.rx, b"\x42", divisor, bad_stop=True)
        await send_bytes(ctx, dut.rx, b"\x11\x22", divisor)   # o.ready stays low: the second overruns
        await ctx.tick().repeat(3 * divisor)
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x11

    async def monitor(ctx):
        async for _, _, fe, ov in ctx.tick().sample(dut.frame_error, dut.overrun):
            flags["frame_error"] += fe
            flags["overrun"] += ov

    run(dut, host, processes=[monitor])
    assert flags["frame_error"] == 1 and flags["overrun"] == 1


@pytest.mark.parametrize("divisor", [4, 9])
def test_tx_sends_stream_back_to_back(divisor):
    dut = UARTTx(divisor)
    data = bytes([0x55, 0x00, 0xFF, 0x3C])
    got = {}

    async def source(ctx):
        for byte in data:
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def host(ctx):
        got["bytes"] = await receive_bytes(ctx, dut.tx, len(data), divisor, timeout_cycles=100)

    run(dut, host, source)
    assert got["bytes"] == data


def test_tx_into_rx_loopback():
    divisor = 6
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    data = bytes(range(0, 256, 17))
    got = []

    async def source(ctx):
        for byte in data:
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)
        # the last byte may wait in the buffer for the one before it: two byte times to drain
        await ctx.tick().repeat(22 * divisor)

    async def sink(ctx):
        ctx.set(rx.o.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(rx.o.valid, rx.o.payload):
            if valid:
                got.append(payload)

    run(m, source, processes=[sink])
    assert bytes(got) == data


def test_divisor_rate_check():
    assert uart_divisor(12e6, 115200) == 104
    assert uart_divisor(50.25e6, 115200) == 436
    with pytest.raises(ValueError):
        uart_divisor(300e3, 115200)
    with pytest.raises(ValueError):
        _check_divisor(3)
