"""How GCP's v8 catalog is read: which host rows carry which GPUs (facts from :mod:`styx.model.catalog.gpus`).

GCP's ``vms.csv`` lists host VMs (``InstanceType`` set, accelerator columns empty, price = CPU+RAM only)
and accelerators (``InstanceType`` empty, price = all ``AcceleratorCount`` GPUs together) in separate
rows. A GPU machine costs host row + accelerator row of the same zone. Which GPUs a machine type has
is implied by its name for the accelerator-optimized families (A2/A3/A4/G2/G4); N1 hosts take
attachable GPUs (T4, V100, P100, P4) up to a CPU/memory limit per GPU count. The tables themselves
live in :mod:`styx.model.catalog.gpus`, shared with the optimizer and the GCP backend.
"""

from __future__ import annotations

from .gpus import GCP_ATTACHABLE, GCP_GPU_ONLY_SERIES, N1_DEFAULT_MEMORY_PER_CPU, gcp_builtin, n1_default_min_cpus

#: 4 GiB per vCPU for the default host of an attached GPU (SkyPilot's default, so answers agree).
DEFAULT_MEMORY_PER_CPU = N1_DEFAULT_MEMORY_PER_CPU

__all__ = ["DEFAULT_MEMORY_PER_CPU", "attachable_limits", "builtin_accelerator", "is_attachable", "is_gpu_family",
           "is_n1", "n1_default_min_cpus"]


def builtin_accelerator(instance_type: str) -> tuple[str, int] | None:
    """The GPUs built into a GCP machine type that the catalog offers: ``a2-highgpu-8g`` -> ``("A100", 8)``.

    None for CPU and N1 types, and for GPU types styx leaves out of the catalog (``a3-edgegpu-8g``,
    ``*-nolssd``, ``a4x-*``, as SkyPilot does).
    """
    g = gcp_builtin(instance_type)
    if g is None or not g.in_catalog or g.count is None:
        return None
    return g.accelerator, g.count


def is_gpu_family(instance_type: str) -> bool:
    """A series that only exists with GPUs (a type of it the table cannot map is no CPU machine)."""
    return instance_type.startswith(GCP_GPU_ONLY_SERIES)


def is_n1(instance_type: str) -> bool:
    return instance_type.startswith("n1-")


def attachable_limits(accelerator: str, count: int | float) -> tuple[float, float] | None:
    """(max vCPUs, max GiB) of an N1 host for ``count`` attached ``accelerator`` GPUs; None: cannot attach."""
    a = GCP_ATTACHABLE.get(accelerator)
    if a is None or a.retired or not float(count).is_integer():
        return None
    return a.hosts.get(int(count))


def is_attachable(accelerator: str) -> bool:
    a = GCP_ATTACHABLE.get(accelerator)
    return a is not None and not a.retired
