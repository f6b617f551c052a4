"""A Verilog harness that trains the on-chip training design with no Python per cycle.

:func:`train_harness_verilog` writes a module ``bp_hw_train_harness`` around
the DUT of a training build (``manifest.json`` with ``kind: "train"``, see
:func:`bp_hw.hdl.backprop.train_manifest`). After reset it

* reads whole input payloads ``{x, t, train}`` with ``$fscanf`` from
  ``+in_file`` (one hex word of ``payload_width`` bits per line, packed by
  :func:`pack_samples`) and drives ``i`` with them, loading the next sample only
  after a transfer;
* keeps ``o`` ready and writes every output transfer to ``+out_file`` as
  ``<cycle> <payload>`` (hex), every input transfer's cycle to ``+in_log``;
* stalls both streams from two xorshift32 generators: every cycle the source
  withholds ``valid`` and the sink ``ready``, each with probability
  ``+stall / 65536``;
* at every *dump point* — before the first sample, after every ``+dump_every``
  samples and after the last one — stops feeding, waits until every output has
  been taken and ``busy`` has been low for two cycles, then reads every weight
  and bias through the access port (one address per cycle) into ``+w_file`` as
  ``<samples so far> <value>`` lines (hex, the value in the access port's width);
* optionally flips one bit of one parameter mid-run (``+inject_after=<samples>``,
  ``+inject_addr``, ``+inject_bit``): at that point it reads the element through
  the access port and writes it back with the bit inverted, before that point's
  dump — a fault the Python side does not know about, for checker tests;
* at every stop writes ``<samples so far> <cycle>`` (hex) to ``+idle_log`` on the
  first cycle the design is seen idle (every output taken, ``busy`` low);
* a watchdog ends the run after ``+watchdog`` cycles without progress;
* at the end writes ``+stats_file``, raises ``done`` and, with ``+finish``,
  calls ``$finish``.

Nothing is compared inside the simulator. The clock is the harness's own when
``BP_HW_INTERNAL_CLOCK`` is defined (Verilator then needs ``--timing``),
otherwise an input driven by cocotb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bp_hw.errors import BpHwError

HARNESS_MODULE = "bp_hw_train_harness"
HARNESS_FILE = "bp_hw_train_harness.v"
RESET_CYCLES = 4
#: Clock period in the runner's time unit (1 ns).
CLOCK_PERIOD = 10
#: Cycles with ``busy`` low (and every output taken) before the harness calls the design idle.
IDLE_CYCLES = 2
_PATH_BITS = 8 * 1024
VERILATOR_CONTROL = f"""`verilator_config
public_flat_rw -module "{HARNESS_MODULE}" -var "clk"
public_flat_rw -module "{HARNESS_MODULE}" -var "done"
"""


@dataclass(frozen=True)
class Field:
    offset: int
    elements: int
    width: int
    signed: bool


@dataclass(frozen=True)
class TrainPorts:
    """What the harness needs from a training manifest."""

    toplevel: str
    clock: str
    reset: str
    reset_active_high: bool
    payload_width: int
    x: Field
    t: Field
    train_offset: int
    out_elements: int
    out_width: int
    out_signed: bool
    depth: int
    addr_width: int
    data_width: int
    read_latency: int
    names: dict

    @classmethod
    def from_manifest(cls, m: dict) -> "TrainPorts":
        if m.get("kind") != "train" or "training" not in m:
            raise BpHwError("this build is not a training design; generate it with `bp-hw generate ... --train`")
        try:
            tr = m["training"]["ports"]
            fin, fout, acc = tr["in"], tr["out"], tr["access"]
            fields = fin["fields"]

            def field(name):
                f = fields[name]
                return Field(int(f["offset"]), int(f["elements"]), int(f["width"]), bool(f["signed"]))

            names = {"i_payload": fin["payload"], "i_valid": fin["valid"], "i_ready": fin["ready"],
                     "o_payload": fout["payload"], "o_valid": fout["valid"], "o_ready": fout["ready"],
                     "addr": acc["addr"], "wdata": acc["wdata"], "we": acc["we"], "rdata": acc["rdata"],
                     "busy": tr["busy"]}
            return cls(
                toplevel=m["toplevel"], clock=m.get("clock", "clk"), reset=m.get("reset", "rst"),
                reset_active_high=m.get("reset_active", "high") == "high",
                payload_width=int(fin["payload_width"]), x=field("x"), t=field("t"),
                train_offset=int(fields["train"]["offset"]),
                out_elements=int(fout["elements"]), out_width=int(fout["width"]), out_signed=bool(fout["signed"]),
                depth=int(acc["depth"]), addr_width=int(acc["addr_width"]), data_width=int(acc["data_width"]),
                read_latency=int(acc["read_latency"]), names=names)
        except (KeyError, TypeError, ValueError) as exc:
            raise BpHwError(f"training manifest is incomplete ({exc!r} missing or malformed); "
                            "re-run `bp-hw generate --train`") from None


def pack_samples(ports: TrainPorts, X, T, train) -> bytes:
    """Hex lines of the input payload ``{x, t, train}`` per sample (the layout of the manifest's fields)."""
    X = np.asarray(X, dtype=np.int64)
    T = np.asarray(T, dtype=np.int64)
    train = np.asarray(train, dtype=np.int64).reshape(-1)
    n = X.shape[0]
    pw = ports.payload_width
    digits = (pw + 3) // 4
    bits = np.zeros((n, digits * 4), dtype=np.uint8)  # LSB first
    for f, values, what in ((ports.x, X, "inputs"), (ports.t, T, "targets")):
        if values.shape != (n, f.elements):
            raise BpHwError(f"{what} must have shape ({n}, {f.elements}), got {values.shape}")
        lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed else (0, (1 << f.width) - 1)
        if values.size and (values.min() < lo or values.max() > hi):
            raise BpHwError(f"{what} do not fit the design's {f.width}-bit port")
        u = values.astype(np.uint64) & np.uint64((1 << f.width) - 1)
        b = ((u[:, :, None] >> np.arange(f.width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
        bits[:, f.offset:f.offset + f.elements * f.width] = b.reshape(n, -1)
    bits[:, ports.train_offset] = (train != 0).astype(np.uint8)
    nibbles = bits.reshape(n, digits, 4) @ np.array([1, 2, 4, 8], dtype=np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles[:, ::-1]]
    return np.concatenate([chars, np.full((n, 1), ord("\n"), dtype=np.uint8)], axis=1).tobytes()


def train_harness_verilog(ports: TrainPorts) -> str:
    """The harness module's Verilog (Verilog-2005: Icarus and Verilator)."""
    p = ports
    n = p.names
    lat = p.read_latency
    lines: list[str] = []
    add = lines.append
    add(f"// Generated by bp_hw.cosim.train_harness for training DUT '{p.toplevel}'. Do not edit.")
    add("// Plusargs: +in_file +n_samples +dump_every +out_file +in_log +w_file +idle_log +stats_file")
    add("//           +stall +stall_seed +watchdog +inject_after +inject_addr +inject_bit +finish")
    add(f"module {HARNESS_MODULE} (")
    add("`ifndef BP_HW_INTERNAL_CLOCK")
    add("    input  wire clk,")
    add("`endif")
    add("    output reg  done")
    add(");")
    add("`ifdef BP_HW_INTERNAL_CLOCK")
    add("    reg clk = 1'b0;")
    add(f"    always #({CLOCK_PERIOD // 2}) clk = !clk;")
    add("`endif")
    add(f"    localparam PW = {p.payload_width};")
    add(f"    localparam OW = {p.out_elements * p.out_width};")
    add(f"    localparam AW = {p.addr_width};")
    add(f"    localparam DW = {p.data_width};")
    add(f"    localparam DEPTH = {p.depth};")
    add(f"    localparam LAT = {lat};")
    add(f"    localparam RESET_CYCLES = {RESET_CYCLES};")
    add(f"    localparam IDLE_CYCLES = {IDLE_CYCLES};")
    add("    // States")
    add("    localparam S_RESET = 3'd0, S_STREAM = 3'd1, S_WAIT = 3'd2, S_DUMP = 3'd3,")
    add("               S_INJ_READ = 3'd4, S_INJ_WRITE = 3'd5, S_END = 3'd6;")
    add("")
    add("    reg  [PW-1:0] in_data;")
    add("    reg  [PW-1:0] next_data;")
    add("    reg  in_have;")
    add("    wire in_valid, in_ready, out_valid, out_ready, busy;")
    add("    wire [OW-1:0] out_data;")
    add("    reg  [AW-1:0] acc_addr;")
    add("    reg  [DW-1:0] acc_wdata;")
    add("    reg  acc_we;")
    add("    wire [DW-1:0] acc_rdata;")
    add("")
    add("    reg rst = 1'b1;")
    add("    reg [7:0] rst_count = 8'd0;")
    add("    reg [2:0] state = S_RESET;")
    add("    reg timed_out = 1'b0;")
    add("    reg input_error = 1'b0;")
    add("    reg injected = 1'b0;")
    add("    reg [63:0] cycle = 64'd0;")
    add("    reg [63:0] n_samples = 64'd0;")
    add("    reg [63:0] dump_every = 64'd0;")
    add("    reg [63:0] since_dump = 64'd0;")
    add("    reg [63:0] sent = 64'd0;")
    add("    reg [63:0] received = 64'd0;")
    add("    reg [63:0] dumps = 64'd0;")
    add("    reg [63:0] dump_cycles = 64'd0;")
    add("    reg [63:0] idle = 64'd0;")
    add("    reg [63:0] watchdog = 64'd1000000;")
    add("    reg [63:0] inject_after = 64'hffffffffffffffff;")
    add("    reg [31:0] inject_addr = 32'd0;")
    add("    reg [31:0] inject_bit = 32'd0;")
    add("    reg [DW-1:0] inject_old = {DW{1'b0}};")
    add("    reg [31:0] step = 32'd0;")
    add("    reg [7:0] quiet = 8'd0;")
    add("    reg [31:0] stall_threshold = 32'd0;")
    add("    reg [31:0] seed = 32'd1;")
    add("    reg [31:0] rng_src = 32'h1;")
    add("    reg [31:0] rng_snk = 32'h2;")
    add("    integer fd_in, fd_out, fd_in_log, fd_w, fd_idle, fd_stats, scan_count;")
    add(f"    reg [{_PATH_BITS - 1}:0] path;")
    add("")
    add("    function [31:0] xorshift32(input [31:0] x);")
    add("        reg [31:0] y;")
    add("        begin")
    add("            y = x ^ (x << 13);")
    add("            y = y ^ (y >> 17);")
    add("            xorshift32 = y ^ (y << 5);")
    add("        end")
    add("    endfunction")
    add("    wire src_stall = rng_src[15:0] < stall_threshold;")
    add("    wire snk_stall = rng_snk[15:0] < stall_threshold;")
    add("    assign in_valid = (state == S_STREAM) && in_have && !src_stall;")
    add("    assign out_ready = (state != S_RESET) && (state != S_END) && !snk_stall;")
    add("    wire in_fire = in_valid && in_ready;")
    add("    wire out_fire = out_valid && out_ready;")
    add("    // A dump point: before the first sample, every dump_every samples, after the last one.")
    add("    wire dump_here = (sent == 64'd0) || (sent == n_samples)")
    add("                     || (dump_every != 64'd0 && since_dump == dump_every);")
    add("    wire inject_here = !injected && (sent == inject_after);")
    add("    wire drained = (received == sent) && !busy;")
    add("")
    conns = [(p.clock, "clk"), (p.reset, "rst" if p.reset_active_high else "!rst"),
             (n["i_payload"], "in_data"), (n["i_valid"], "in_valid"), (n["i_ready"], "in_ready"),
             (n["o_payload"], "out_data"), (n["o_valid"], "out_valid"), (n["o_ready"], "out_ready"),
             (n["addr"], "acc_addr"), (n["wdata"], "acc_wdata"), (n["we"], "acc_we"), (n["rdata"], "acc_rdata"),
             (n["busy"], "busy")]
    add(f"    {p.toplevel} dut (")
    add(",\n".join(f"        .{port}({sig})" for port, sig in conns))
    add("    );")
    add("")
    add("    initial begin")
    add("        done = 1'b0;")
    add("        fd_in = 0; fd_out = 0; fd_in_log = 0; fd_w = 0; fd_idle = 0; fd_stats = 0;")
    add("        acc_addr = {AW{1'b0}}; acc_wdata = {DW{1'b0}}; acc_we = 1'b0;")
    add("        if (!$value$plusargs(\"n_samples=%d\", n_samples)) n_samples = 64'd0;")
    add("        if (!$value$plusargs(\"dump_every=%d\", dump_every)) dump_every = 64'd0;")
    add("        if (!$value$plusargs(\"stall=%d\", stall_threshold)) stall_threshold = 32'd0;")
    add("        if (!$value$plusargs(\"stall_seed=%d\", seed)) seed = 32'd1;")
    add("        if (!$value$plusargs(\"watchdog=%d\", watchdog)) watchdog = 64'd1000000;")
    add("        if (!$value$plusargs(\"inject_after=%d\", inject_after)) inject_after = 64'hffffffffffffffff;")
    add("        if (!$value$plusargs(\"inject_addr=%d\", inject_addr)) inject_addr = 32'd0;")
    add("        if (!$value$plusargs(\"inject_bit=%d\", inject_bit)) inject_bit = 32'd0;")
    add("        rng_src = xorshift32(seed ^ 32'h9e3779b9);")
    add("        if (rng_src == 32'd0) rng_src = 32'h1;")
    add("        rng_snk = xorshift32(xorshift32(seed ^ 32'h7f4a7c15) ^ 32'h85ebca6b);")
    add("        if (rng_snk == 32'd0) rng_snk = 32'h2;")
    add("        if ($value$plusargs(\"in_file=%s\", path)) fd_in = $fopen(path, \"r\");")
    add("        if ($value$plusargs(\"out_file=%s\", path)) fd_out = $fopen(path, \"w\");")
    add("        if ($value$plusargs(\"in_log=%s\", path)) fd_in_log = $fopen(path, \"w\");")
    add("        if ($value$plusargs(\"w_file=%s\", path)) fd_w = $fopen(path, \"w\");")
    add("        if ($value$plusargs(\"idle_log=%s\", path)) fd_idle = $fopen(path, \"w\");")
    add("        if ($value$plusargs(\"stats_file=%s\", path)) fd_stats = $fopen(path, \"w\");")
    add("        in_have = 1'b0;")
    add("        in_data = {PW{1'b0}};")
    add("        if (n_samples != 0) begin")
    add("            if (fd_in == 0) input_error = 1'b1;")
    add("            else begin")
    add("                scan_count = $fscanf(fd_in, \"%h\\n\", next_data);")
    add("                if (scan_count == 1) begin in_data = next_data; in_have = 1'b1; end")
    add("                else input_error = 1'b1;")
    add("            end")
    add("        end")
    add("    end")
    add("")
    add("    always @(posedge clk) begin")
    add("        rng_src <= xorshift32(rng_src);")
    add("        rng_snk <= xorshift32(rng_snk);")
    add("        acc_we <= 1'b0;")
    add("        if (state != S_RESET && state != S_END) cycle <= cycle + 64'd1;")
    add("        if (out_fire) begin")
    add("            if (fd_out != 0) $fwrite(fd_out, \"%h %h\\n\", cycle, out_data);")
    add("            received <= received + 64'd1;")
    add("        end")
    add("        // Progress watchdog: any transfer, dump or injection step resets it.")
    add("        if (in_fire || out_fire || state == S_DUMP || state == S_INJ_READ || state == S_INJ_WRITE)")
    add("            idle <= 64'd0;")
    add("        else if (state == S_STREAM || state == S_WAIT)")
    add("            idle <= idle + 64'd1;")
    add("        if ((state == S_STREAM || state == S_WAIT) && idle + 64'd1 >= watchdog) begin")
    add("            timed_out <= 1'b1;")
    add("            state <= S_END;")
    add("        end else case (state)")
    add("        S_RESET: begin")
    add("            rst_count <= rst_count + 8'd1;")
    add("            if (rst_count + 8'd1 >= RESET_CYCLES) begin")
    add("                rst <= 1'b0;")
    add("                quiet <= 8'd0;")
    add("                state <= (input_error || n_samples == 0) ? S_END : S_WAIT;")
    add("            end")
    add("        end")
    add("        S_STREAM: begin")
    add("            if (in_fire) begin")
    add("                if (fd_in_log != 0) $fwrite(fd_in_log, \"%h\\n\", cycle);")
    add("                sent <= sent + 64'd1;")
    add("                since_dump <= since_dump + 64'd1;")
    add("                if (sent + 64'd1 < n_samples) begin")
    add("                    scan_count = $fscanf(fd_in, \"%h\\n\", next_data);")
    add("                    if (scan_count == 1) in_data <= next_data;")
    add("                    else begin in_have <= 1'b0; input_error <= 1'b1; end")
    add("                end else in_have <= 1'b0;")
    add("                // Stop before the next sample at a dump or injection point (and after the last one).")
    add("                if (sent + 64'd1 == n_samples || sent + 64'd1 == inject_after")
    add("                        || (dump_every != 64'd0 && since_dump + 64'd1 == dump_every)) begin")
    add("                    quiet <= 8'd0;")
    add("                    state <= S_WAIT;")
    add("                end")
    add("            end")
    add("        end")
    add("        S_WAIT: begin")
    add("            // Every output taken and busy low for IDLE_CYCLES cycles in a row.")
    add("            if (drained && !out_fire) begin")
    add("                if (quiet == 8'd0 && fd_idle != 0) $fwrite(fd_idle, \"%h %h\\n\", sent, cycle);")
    add("                if (quiet + 8'd1 >= IDLE_CYCLES) begin")
    add("                    quiet <= 8'd0;")
    add("                    step <= 32'd0;")
    add("                    if (inject_here) state <= S_INJ_READ;")
    add("                    else if (dump_here) state <= S_DUMP;")
    add("                    else if (sent == n_samples || input_error) state <= S_END;")
    add("                    else state <= S_STREAM;")
    add("                end else quiet <= quiet + 8'd1;")
    add("            end else quiet <= 8'd0;")
    add("        end")
    add("        S_DUMP: begin")
    add("            // Address k goes out after the edge with step == k; its data is")
    add("            // sampled LAT + 1 edges later.")
    add("            dump_cycles <= dump_cycles + 64'd1;")
    add("            if (step < DEPTH) acc_addr <= step[AW-1:0];")
    add("            if (step >= LAT + 1 && fd_w != 0) $fwrite(fd_w, \"%h %h\\n\", sent, acc_rdata);")
    add("            if (step == DEPTH + LAT) begin")
    add("                dumps <= dumps + 64'd1;")
    add("                since_dump <= 64'd0;")
    add("                state <= (sent == n_samples || input_error) ? S_END : S_STREAM;")
    add("            end else step <= step + 32'd1;")
    add("        end")
    add("        S_INJ_READ: begin")
    add("            acc_addr <= inject_addr[AW-1:0];")
    add("            if (step == LAT + 1) begin")
    add("                inject_old <= acc_rdata;")
    add("                acc_wdata <= acc_rdata ^ ({{(DW-1){1'b0}}, 1'b1} << inject_bit);")
    add("                acc_we <= 1'b1;")
    add("                state <= S_INJ_WRITE;")
    add("            end else step <= step + 32'd1;")
    add("        end")
    add("        S_INJ_WRITE: begin")
    add("            // The write happened on this edge; wait for idle again before the dump.")
    add("            injected <= 1'b1;")
    add("            quiet <= 8'd0;")
    add("            state <= S_WAIT;")
    add("        end")
    add("        default: ;")
    add("        endcase")
    add("        if (state == S_END) done <= 1'b1;")
    add("    end")
    add("")
    add("`ifdef BP_HW_DUMP")
    add("    initial begin")
    add("        if ($value$plusargs(\"waves_file=%s\", path)) begin")
    add("            $dumpfile(path);")
    add(f"            $dumpvars(0, {HARNESS_MODULE});")
    add("        end")
    add("    end")
    add("`endif")
    add("")
    add("    always @(posedge done) begin")
    add("        if (fd_stats != 0) begin")
    add("            $fwrite(fd_stats, \"cycles %0d\\nsent %0d\\nreceived %0d\\ndumps %0d\\ndump_cycles %0d\\n\","
        " cycle, sent, received, dumps, dump_cycles);")
    add("            $fwrite(fd_stats, \"timed_out %0d\\ninput_error %0d\\nn_samples %0d\\ninjected %0d\\n\","
        " timed_out, input_error, n_samples, injected);")
    add("            $fwrite(fd_stats, \"inject_old %0d\\ninject_new %0d\\n\", inject_old, acc_wdata);")
    add("            $fclose(fd_stats);")
    add("        end")
    add("        if (fd_out != 0) $fclose(fd_out);")
    add("        if (fd_in_log != 0) $fclose(fd_in_log);")
    add("        if (fd_w != 0) $fclose(fd_w);")
    add("        if (fd_idle != 0) $fclose(fd_idle);")
    add("        if (fd_in != 0) $fclose(fd_in);")
    add("        if ($test$plusargs(\"finish\")) $finish;")
    add("    end")
    add("endmodule")
    return "\n".join(lines) + "\n"
