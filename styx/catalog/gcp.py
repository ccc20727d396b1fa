"""GCP machine-type facts the v8 catalog does not spell out.

GCP's ``vms.csv`` lists host VMs (``InstanceType`` set, accelerator columns empty, price = CPU+RAM only)
and accelerators (``InstanceType`` empty, price = all ``AcceleratorCount`` GPUs together) in separate
rows. A GPU machine costs host row + accelerator row of the same zone. Which GPUs a machine type has
is implied by its name for the accelerator-optimized families (A2/A3/A4/G2/G4); N1 hosts take
attachable GPUs (T4, V100, P100, P4, K80) up to a CPU/memory limit per GPU count.
Sources: https://cloud.google.com/compute/docs/gpus and SkyPilot's ``gcp_catalog.py`` (same tables).
"""

from __future__ import annotations

import re

# Machine types whose GPUs are built in: regex -> (accelerator, count or None = from the match).
_BUILTIN: tuple[tuple[re.Pattern[str], str, int | None], ...] = (
    (re.compile(r"^a2-highgpu-(1|2|4|8)g$"), "A100", None),
    (re.compile(r"^a2-megagpu-16g$"), "A100", 16),
    (re.compile(r"^a2-ultragpu-(1|2|4|8)g$"), "A100-80GB", None),
    (re.compile(r"^a3-highgpu-(1|2|4|8)g$"), "H100", None),
    (re.compile(r"^a3-megagpu-8g$"), "H100-MEGA", 8),
    (re.compile(r"^a3-ultragpu-8g$"), "H200", 8),
    (re.compile(r"^a4-highgpu-8g$"), "B200", 8),
)

# G2 (L4) and G4 (RTX PRO 6000): the GPU count is a function of the vCPU size.
_G2_L4 = {4: 1, 8: 1, 12: 1, 16: 1, 32: 1, 24: 2, 48: 4, 96: 8}
_G4_RTXPRO = {48: 1, 96: 2, 192: 4, 384: 8}

# Families that only exist with GPUs; a type of these we cannot map (a3-edgegpu-8g, *-nolssd,
# a4x-*) is neither a CPU machine nor a known GPU machine, so it is left out (as SkyPilot does).
_GPU_FAMILY_PREFIXES = ("a2-", "a3-", "a4-", "a4x-", "g2-", "g4-")

#: GPUs that attach to N1 hosts: name -> count -> (max vCPUs, max memory GiB) of the host.
N1_ATTACHABLE: dict[str, dict[int, tuple[float, float]]] = {
    "K80": {1: (8, 52), 2: (16, 104), 4: (32, 208), 8: (64, 208)},
    "V100": {1: (12, 78), 2: (24, 156), 4: (48, 312), 8: (96, 624)},
    "T4": {1: (48, 312), 2: (48, 312), 4: (96, 624)},
    "P4": {1: (24, 156), 2: (48, 312), 4: (96, 624)},
    "P100": {1: (16, 104), 2: (32, 208), 4: (96, 624)},
}

#: Default host size for an attached GPU when the request gives neither cpus nor memory:
#: at least this many vCPUs, and 4 GiB per vCPU (SkyPilot's defaults, so answers agree).
_N1_DEFAULT_CPUS: dict[str, dict[int, int]] = {
    "K80": {1: 4, 2: 8, 4: 16, 8: 32},
    "V100": {1: 8, 2: 16, 4: 32, 8: 64},
    "T4": {1: 4, 2: 8, 4: 48},
    "P100": {1: 8, 2: 16, 4: 32, 8: 64},
}
_DEFAULT_CPUS = {1: 8, 2: 16, 4: 32, 8: 64, 16: 128}
DEFAULT_MEMORY_PER_CPU = 4.0


def builtin_accelerator(instance_type: str) -> tuple[str, int] | None:
    """The GPUs built into a GCP machine type: ``a2-highgpu-8g`` -> ``("A100", 8)``."""
    for pat, name, count in _BUILTIN:
        m = pat.match(instance_type)
        if m:
            return name, (count if count is not None else int(m.group(1)))
    if instance_type.startswith("g2-standard-"):
        n = _suffix_int(instance_type)
        if n in _G2_L4:
            return "L4", _G2_L4[n]
    elif instance_type.startswith("g4-standard-"):
        n = _suffix_int(instance_type)
        if n in _G4_RTXPRO:
            return "RTXPRO6000", _G4_RTXPRO[n]
    return None


def is_gpu_family(instance_type: str) -> bool:
    return instance_type.startswith(_GPU_FAMILY_PREFIXES)


def is_n1(instance_type: str) -> bool:
    return instance_type.startswith("n1-")


def n1_default_min_cpus(accelerator: str, count: int | float) -> float:
    table = _N1_DEFAULT_CPUS.get(accelerator, _DEFAULT_CPUS)
    return float(table.get(int(count), _DEFAULT_CPUS.get(int(count), 8)))


def _suffix_int(instance_type: str) -> int | None:
    tail = instance_type.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None
