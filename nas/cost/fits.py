"""Will a training run fit this machine's memory? A lower bound, checked before any work.

Training a model on ``batch`` crops of ``crop`` pixels holds at least the layer-by-layer peak
of one forward pass in float32 (``measure_cost``, shape only: milliseconds) and the weights with
their gradients and Adam's two moments (4 x params x 4 bytes). ``check_fits`` refuses a run whose
lower bound exceeds the memory available now (psutil's ``available``), naming the size, what it
needs and what there is, before a run folder is made or a trial trains. Backpropagation holds
more than this bound, so a run close to it may still run out; one far over it never starts.
"""

from __future__ import annotations

from nas.config import ArchConfig
from nas.cost.report import measure_cost
from nas.errors import ConfigError
from nas.units import format_bytes


def training_bytes_at_least(arch: ArchConfig, batch: int, crop: int | tuple[int, int]) -> int:
    """A lower bound of the memory training ``arch`` on ``batch`` crops needs (bytes)."""
    size = (crop, crop) if isinstance(crop, int) else crop
    r = measure_cost(arch, size, batch, bits=32, engine="meta")
    return r.peak_activation_bytes + 16 * r.params


def available_bytes() -> int:
    """Memory available to a new allocation now (psutil: free and reclaimable)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_fits(arch: ArchConfig, batch: int, crop: int | tuple[int, int], what: str,
               field: str) -> None:  # fmt: skip
    """``ConfigError`` naming ``field`` when training ``arch`` on ``batch`` x ``crop`` cannot fit
    in the memory available (``what`` says which run: "the proxy", "training")."""
    need = training_bytes_at_least(arch, batch, crop)
    have = available_bytes()
    if need > have:
        size = f"{crop}x{crop}" if isinstance(crop, int) else f"{crop[0]}x{crop[1]}"
        raise ConfigError(f"{field}: {what} on batch {batch} of {size} crops needs at least "
                          f"{format_bytes(need)} of memory, and this machine has "
                          f"{format_bytes(have)} available; lower the batch or the "
                          "crop")  # fmt: skip
