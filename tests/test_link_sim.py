"""The board link in a UART-level simulation (Verilator): a real `bp-hw run` on a pty drives the link and
network bit by bit at 3 Mbaud; clean, with faults injected into both directions, and against a wrong model.

The throughput figures (10,000 iris samples, MNIST) and the full fault table are benchmarks
(benchmarks/bench_link.py); here every session must end bit-exact with no sample lost.
"""

import pytest

from bp_hw.boards.link_sim import build_link, run_link
from bp_hw.hdl.emit import generate
from bp_hw.train_start import seeded_qmodel
from fixtures.simulators import need


@pytest.fixture(scope="module")
def iris_link(tmp_path_factory):
    need("verilator")
    out = tmp_path_factory.mktemp("link") / "iris"
    generate(seeded_qmodel("iris", [4, 8, 3])[0], 1, out, name="iris_link", taps=False)
    return build_link(out, "icebreaker", 3_000_000)


def _check(r, samples):
    host = r["host"]
    assert r["host_status"] == 0 and host["bit_exact"] and host["samples"] == samples, r
    return host["link"]


def test_link_streams_bit_exact_near_the_line_rate(iris_link):
    r = run_link(iris_link, "random:120", timeout=20)
    link = _check(r, 120)
    assert link["resends"] == 0 and r["board_errors"] == 0
    # Requests back to back: the board keeps up with the line (the bound is what 3 Mbaud allows).
    assert r["line_bound_samples_per_s"] == 25000.0 and r["samples_per_s"] > 0.9 * 25000


@pytest.mark.parametrize("fault", ["flip", "cut", "reply_flip"])
def test_link_recovers_from_faults_without_losing_a_sample(iris_link, fault):
    r = run_link(iris_link, "random:160", fault=fault, fault_every=30, fault_count=4, seed=3, timeout=20)
    link = _check(r, 160)
    assert r["injected"] == 4 and link["resends"] >= 1


def test_link_session_catches_a_wrong_model(iris_link, tmp_path):
    """The companion: the same session against a build with other weights (info check skipped) fails."""
    other = tmp_path / "other"
    generate(seeded_qmodel("iris", [4, 8, 3], seed=1)[0], 1, other, name="iris_link", taps=False)
    r = run_link(iris_link, "random:20", timeout=20, host_build=other, host_args=("--no-info",))
    assert r["host_status"] == 1 and not r["host"]["bit_exact"] and r["host"]["mismatched_samples"] > 0


@pytest.fixture(scope="module")
def xor_train_link(tmp_path_factory):
    need("verilator")
    out = tmp_path_factory.mktemp("link") / "xor_train"
    generate(seeded_qmodel("xor", [2, 2, 1])[0], 1, out, name="xor_train", train=True)
    return build_link(out, "icebreaker", 3_000_000)


def test_training_board_trains_bit_exact_over_the_link(xor_train_link):
    """`bp-hw run --train` against the simulated training board: parameters written, 3 epochs trained, every
    parameter read back after each epoch equal to FixedTrainer's, the test split inferred."""
    r = run_link(xor_train_link, "xor", timeout=20, host_args=("--train", "--epochs", "3"))
    host = r["host"]
    assert r["host_status"] == 0 and host["bit_exact"] and host["samples"] == 12 and len(host["epochs"]) == 3, r


def test_training_session_catches_a_board_that_learns_otherwise(xor_train_link, tmp_path):
    """The companion: the host's build has another learning rate than the board's (info check skipped). The
    host writes its own starting parameters, so only the board's learning differs from the host's trainer:
    the first epoch's check must fail and say where."""
    from bp_hw.fixed.trainer import TrainSpec
    other = tmp_path / "other"
    generate(seeded_qmodel("xor", [2, 2, 1])[0], 1, other, name="xor_train", train=TrainSpec(lr="2^-3"))
    r = run_link(xor_train_link, "xor", timeout=20, host_build=other,
                 host_args=("--train", "--epochs", "2", "--no-info"))
    assert r["host_status"] == 1 and not r["host"]["bit_exact"] and "epoch 1" in r["host"]["problem"], r


@pytest.mark.parametrize("fault", ["flip", "reply_flip", "cut"])
def test_training_session_with_link_faults_ends_bit_exact(xor_train_link, fault):
    """Damaged requests (NAK, sent again), damaged answers (sent again with the same seq: the board answers
    from the outputs it kept instead of training twice), frames cut off: still bit-exact after every epoch."""
    r = run_link(xor_train_link, "xor", fault=fault, fault_every=6, fault_count=3, seed=5, timeout=10,
                 host_args=("--train", "--epochs", "4"))
    host = r["host"]
    assert r["injected"] == 3 and r["host_status"] == 0 and host["bit_exact"] and host["samples"] == 16, r
    assert host["link"]["resends"] >= 1
