"""Co-simulation: the generated Verilog against the integer model, bit for bit, in cocotb.

Reads a build folder only through :mod:`bp_hw.plan.manifest`. The pieces:

``harness``       the Verilog harness kit: an inference body and a training body from shared skeleton pieces
``runner``        one build path and one run path for both bodies (cocotb's Python runner); the inference front end
``cocotb_bench``  the one cocotb test the simulator loads (waits for the harness's ``done``)
``hexio``         payloads to hex files and harness logs back to numpy, vectorised
``check``         output comparison and stream-fault hints (lost, duplicated, reordered samples)
``verify``        the inference check behind ``bp-hw simulate`` (outputs and per-layer taps)
``train_verify``  the training check behind ``bp-hw simulate --train`` (outputs and every weight read back)
``makeflow``      the helper of ``sim/Makefile`` (cocotb's Makefile flow)
``tools``, ``objcache``  simulator discovery; Verilator's runtime objects compiled once
"""
