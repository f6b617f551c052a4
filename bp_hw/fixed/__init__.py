"""Fixed-point arithmetic, the quantizer and the integer model: the one spec of the hardware.

Only numpy. The HDL generator and every test read these objects; nobody writes
the arithmetic a second time.
"""

from .qformat import QFormat
from .rounding import ROUNDING_MODES, OVERFLOW_MODES, round_shift, overflow, quantize_float
from .lfsr import LFSR
from .lut import ActivationLUT
from .qmodel import QLayer, QModel
from .quantizer import QuantConfig, quantize_model

__all__ = ["QFormat", "ROUNDING_MODES", "OVERFLOW_MODES", "round_shift", "overflow", "quantize_float",
           "LFSR", "ActivationLUT", "QLayer", "QModel", "QuantConfig", "quantize_model"]
