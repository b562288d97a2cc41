"""The intent model kind: training, serving and evaluation of the intent
classifier. Plain Python in and out; never imports Django."""

from ..artifact import ArtifactError
from ..encoder import SentenceEncoder, resolve_base_model
from ..runtime import choose_device
from .config import ModelConfig, TrainConfig
from .data import OOS_LABEL, DataError, Example, load_examples, validate_examples
from .evaluation import evaluate, format_report
from .predictor import Prediction, Predictor
from .training import train_intent_model

__all__ = [
    "OOS_LABEL",
    "ArtifactError",
    "DataError",
    "Example",
    "ModelConfig",
    "Prediction",
    "Predictor",
    "SentenceEncoder",
    "TrainConfig",
    "choose_device",
    "evaluate",
    "format_report",
    "load_examples",
    "resolve_base_model",
    "train_intent_model",
    "validate_examples",
]
