"""The inference toolkit: model code in plain Python, never Django.

Shared by every model kind: `artifact` (checksummed, atomically written model
directories), `runtime` (device, threads, precision and every environment variable
read here), `encoder` (the bundled sentence encoder) and `embed_cache`. The model
kinds sit beneath: `intents` (the intent classifier, re-exported here as the
package's public names), `replies` (reply suggestions); see docs/architecture.md."""

from . import _omp  # noqa: F401 - must run before torch is imported

# The package's public names are the intent model's (`from inference import Predictor`).
from .intents import *  # noqa: F403
from .intents import __all__  # noqa: F401
