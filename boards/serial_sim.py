"""Bit-level serial line helpers for Amaranth simulation testbenches (the simulated host).

Used by the tests to drive a UART input and decode a UART output at a given
divisor (clock cycles per bit), so that gateware is checked against the frame
format exactly as a host would see it.
"""

from __future__ import annotations

__all__ = ["send_bytes", "receive_bytes"]


async def send_bytes(ctx, line, data: bytes, divisor: int, *, stop_bits: int = 1, bad_stop: bool = False):
    """Drive ``line`` with 8N1 frames of ``data``; ``bad_stop`` sends a low stop bit (framing error)."""
    for byte in data:
        bits = [0] + [(byte >> k) & 1 for k in range(8)] + [0 if bad_stop else 1] + [1] * (stop_bits - 1)
        for bit in bits:
            ctx.set(line, bit)
            await ctx.tick().repeat(divisor)
    ctx.set(line, 1)


async def receive_bytes(ctx, line, count: int, divisor: int, *, timeout_cycles: int | None = None) -> bytes:
    """Decode ``count`` 8N1 bytes from ``line``, sampling each bit in its middle.

    Raises ``TimeoutError`` if a start bit does not come within ``timeout_cycles``
    (per byte) and ``ValueError`` on a framing error.
    """
    out = bytearray()
    for _ in range(count):
        waited = 0
        while ctx.get(line):
            await ctx.tick()
            waited += 1
            if timeout_cycles is not None and waited > timeout_cycles:
                raise TimeoutError(f"no start bit after {waited} cycles ({len(out)} of {count} bytes received)")
        await ctx.tick().repeat(divisor // 2)
        if ctx.get(line):
            raise ValueError("start bit glitch on the serial line")
        byte = 0
        for k in range(8):
            await ctx.tick().repeat(divisor)
            byte |= ctx.get(line) << k
        await ctx.tick().repeat(divisor)
        if not ctx.get(line):
            raise ValueError(f"framing error after byte {byte:02X}")
        out.append(byte)
    return bytes(out)
