"""bp-hw: backpropagation-trained MLPs as bit-exact fixed-point FPGA hardware."""

__version__ = "0.1.0"
