"""Device, threads, precision and library noise of the reply models, chosen here only."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import torch
from transformers.utils import logging as hf_logging

DEVICE_ENV = "REPLY_DEVICE"
THREADS_ENV = "REPLY_THREADS"


def choose_device(device: str | None = None) -> torch.device:
    """The argument wins, then $REPLY_DEVICE, then a GPU if there is one."""
    name = device or os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def limit_threads(threads: int | None = None) -> int:
    """Cap intra-op threads (process-wide in torch): on a shared CPU more threads than
    cores only adds contention. Returns the number in force."""
    wanted = threads or int(os.environ.get(THREADS_ENV, "0")) or None
    if wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


def quantize_for_cpu(model: torch.nn.Module) -> torch.nn.Module:
    """Dynamic int8 for Linear layers: weights int8, activations quantised per call.

    Measured on the bench CPU it shortens decoding; bench/replies_sgd.py prints the
    quality it costs. torch marks the eager API deprecated in favour of torchao, which
    the product does not ship, so the warning is silenced here.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence load reports and progress bars: a worker's log is not a terminal."""
    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            # EncoderDecoderModel warns on every training call that it computes the
            # loss itself since v4.12; that is the behaviour this code relies on.
            warnings.filterwarnings("ignore", message="Version v4.12.0", category=FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
