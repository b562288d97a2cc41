"""What an intent model directory holds, and loading its config once the shared
checks (inference.artifact) have passed."""

from __future__ import annotations

from pathlib import Path

from ..artifact import CONFIG_FILE, METRICS_FILE, ArtifactError, read_json
from ..artifact import verify as verify_files
from .config import ModelConfig

WEIGHTS_FILE = "model.safetensors"
ENCODER_CONFIG_FILE = "encoder/config.json"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, ENCODER_CONFIG_FILE, METRICS_FILE, "tokenizer.json")


def verify(model_dir: Path) -> tuple[ModelConfig, str]:
    """Check the directory against checksums.json; returns (config, model id)."""
    model_id = verify_files(model_dir, REQUIRED_FILES)
    try:
        config = ModelConfig.from_dict(read_json(model_dir, CONFIG_FILE))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{model_dir} is damaged: {CONFIG_FILE} is not a valid model config ({exc}).") from exc
    return config, model_id
