"""What the machine offers a trainer: GPUs, bf16, a distributed launch.

Shared by the reward model and the DPO policy so both pick the same defaults: bf16 and
gradient checkpointing on a GPU, plain fp32 on CPU (bf16 autocast and recomputation only
cost time there), ``report_to="none"`` unless the user asks for a tracker.
"""

from __future__ import annotations

import os

from ..errors import ConfigError

#: Trackers ``report_to`` accepts here (transformers integrations), besides ``none``.
TRACKERS = ("tensorboard", "wandb")


def cuda_count() -> int:
    """Number of visible CUDA devices (0 on a CPU machine)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def bf16_supported() -> bool:
    """True when a CUDA device that computes in bf16 is present."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def in_distributed_launch() -> bool:
    """True inside ``accelerate launch`` / ``torchrun`` (one process per device)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def inference_device() -> str:
    """``cuda:LOCAL_RANK`` inside a distributed launch, ``cuda`` with a GPU, else ``cpu``."""
    if cuda_count() == 0:
        return "cpu"
    if in_distributed_launch():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cuda"


def resolve_auto(value: bool | None, auto: bool) -> bool:
    """``None`` means automatic: take ``auto``."""
    return auto if value is None else bool(value)


def report_to(value: str) -> list[str] | str:
    """``none`` (default), ``tensorboard``, ``wandb`` or a comma list; checked early.

    Raises :class:`ConfigError` naming the missing package, so a run does not fail after
    the data was tokenized.
    """
    names = [v.strip() for v in value.split(",") if v.strip()] or ["none"]
    if names == ["none"]:
        return "none"
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise ConfigError(f"report_to: unknown tracker(s) {unknown}; choose from none, {', '.join(TRACKERS)}")
    import importlib.util

    for name in names:
        module = "torch.utils.tensorboard" if name == "tensorboard" else "wandb"
        package = "tensorboard" if name == "tensorboard" else "wandb"
        try:
            found = importlib.util.find_spec(package) is not None
        except ImportError:
            found = False
        if not found:
            raise ConfigError(f"report_to={name} needs the package '{package}' ({module}): pip install {package}")
    return names
