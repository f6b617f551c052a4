"""Session-wide test settings: the seed of the random-design co-simulation run, printed in the log."""

from __future__ import annotations

import os
import time

FUZZ_SEED_VARIABLE = "BP_HW_FUZZ_SEED"


def pytest_configure(config):
    # Chosen once, in the controlling process, before xdist starts its workers (they inherit it), so
    # every run covers new designs and the log says which.
    if not hasattr(config, "workerinput") and not os.environ.get(FUZZ_SEED_VARIABLE):
        os.environ[FUZZ_SEED_VARIABLE] = str(int(time.time()) % 1_000_000 * 1000)


def pytest_report_header(config):
    return f"random-design fuzz seed: {FUZZ_SEED_VARIABLE}={os.environ.get(FUZZ_SEED_VARIABLE)} " \
           f"(set it to rerun the same designs)"
