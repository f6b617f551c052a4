"""Float backpropagation reference trainer (numpy only).

Entry points: :func:`train` (data sets + :class:`TrainConfig` -> :class:`~bp_hw.modelfile.FloatModel`)
and :func:`init_weights` (the seeded initialisation shared with the fixed-point trainer).
"""

from .activations import ACTIVATIONS, Activation, get_activation
from .config import TrainConfig
from .init import INIT_SCHEMES, init_weights
from .losses import get_loss
from .network import Network
from .optimizers import OPTIMIZERS, make_optimizer
from .trainer import Trainer, normalization_stats, train

__all__ = [
    "ACTIVATIONS", "Activation", "get_activation", "TrainConfig", "INIT_SCHEMES", "init_weights",
    "get_loss", "Network", "OPTIMIZERS", "make_optimizer", "Trainer", "normalization_stats", "train",
]
