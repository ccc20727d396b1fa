"""GPU facts per machine family: the one table the catalog, the optimizer and the backends read.

* **GCP machine types with GPUs built in** (A2, A3, A4, A4X, G2, G4): which accelerator, how many per
  machine type. ``in_catalog=False`` marks types styx does not offer from the catalog (as SkyPilot does
  not: ``a3-edgegpu-*``, ``a4x-*`` and the ``-nolssd`` variants); a backend still knows their GPUs when a
  user names one.
* **GCP N1 attachable GPUs** (``guest_accelerators``): the guest accelerator type, the counts, the
  largest N1 host per count, and the default host size (vCPUs) when a request gives no cpus/memory.
* **AWS GPU families** (p and g): accelerator and count per instance size, with the catalog's names
  (``AcceleratorName``, not ``GpuInfo``: ``p4de.24xlarge`` is ``A100-80GB``).

Sources: https://cloud.google.com/compute/docs/gpus, https://aws.amazon.com/ec2/instance-types/ and
SkyPilot's ``gcp_catalog.py`` (the same mappings, so the answers agree). ``tests/styx/model/catalog/test_gpus.py``
checks every GPU instance type of the shared catalogs against this table.

Plain data and lookups, standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "AWS_FAMILIES",
    "GCP_ATTACHABLE",
    "GCP_BUILTIN_FAMILIES",
    "GCP_GPU_ONLY_SERIES",
    "KNOWN_ACCELERATORS",
    "N1_DEFAULT_MEMORY_PER_CPU",
    "AttachableGpu",
    "GpuFamily",
    "MachineGpus",
    "attachable",
    "gcp_builtin",
    "instance_gpus",
    "n1_default_min_cpus",
]


@dataclass(frozen=True)
class GpuFamily:
    """Machine types ``<prefix><size>`` that carry ``accelerator`` GPUs: ``sizes`` maps size -> GPUs."""

    cloud: str
    prefix: str
    accelerator: str
    sizes: Mapping[str, int]
    in_catalog: bool = True


@dataclass(frozen=True)
class MachineGpus:
    """The GPUs of one machine type. ``count`` is None for a family member the table does not list."""

    accelerator: str
    count: int | None
    in_catalog: bool = True

    @property
    def label(self) -> str:
        return f"{self.accelerator}:{self.count}" if self.count else self.accelerator

    def matches(self, name: str, count: int | float) -> bool:
        """Whether a request ``name:count`` fits these GPUs: the same name (case-insensitive) or the family's
        base name (``H100`` for ``H100-MEGA``, ``A100`` for ``A100-80GB``), and the same count when known."""
        want, have = name.upper(), self.accelerator.upper()
        return (want == have or have.startswith(want + "-")) and (self.count is None or float(count) == self.count)


@dataclass(frozen=True)
class AttachableGpu:
    """A GPU that attaches to GCP N1 hosts. ``hosts``: count -> (max vCPUs, max memory GiB) of the host."""

    name: str
    guest_type: str
    hosts: Mapping[int, tuple[float, float]]
    default_cpus: Mapping[int, int] | None = None  # None: the generic default (_DEFAULT_CPUS)
    retired: bool = False  # no longer sold: neither offered nor created

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(sorted(self.hosts))


def _ro(d: dict) -> Mapping:
    return MappingProxyType(d)


_NG = {"1g": 1, "2g": 2, "4g": 4, "8g": 8}

#: GCP families whose GPUs are part of the machine type (no guest_accelerators block).
GCP_BUILTIN_FAMILIES: tuple[GpuFamily, ...] = (
    GpuFamily("gcp", "a2-highgpu-", "A100", _ro(_NG)),
    GpuFamily("gcp", "a2-megagpu-", "A100", _ro({"16g": 16})),
    GpuFamily("gcp", "a2-ultragpu-", "A100-80GB", _ro(_NG)),
    GpuFamily("gcp", "a3-highgpu-", "H100", _ro(_NG)),
    GpuFamily("gcp", "a3-edgegpu-", "H100", _ro({"8g": 8}), in_catalog=False),
    GpuFamily("gcp", "a3-megagpu-", "H100-MEGA", _ro({"8g": 8})),
    GpuFamily("gcp", "a3-ultragpu-", "H200", _ro({"8g": 8})),
    GpuFamily("gcp", "a4-highgpu-", "B200", _ro({"8g": 8})),
    GpuFamily("gcp", "a4x-highgpu-", "GB200", _ro({"4g": 4}), in_catalog=False),
    # G2 (L4) and G4 (RTX PRO 6000): the GPU count follows the vCPU size
    GpuFamily("gcp", "g2-standard-", "L4", _ro({"4": 1, "8": 1, "12": 1, "16": 1, "32": 1, "24": 2, "48": 4,
                                                "96": 8})),
    GpuFamily("gcp", "g4-standard-", "RTXPRO6000", _ro({"48": 1, "96": 2, "192": 4, "384": 8})),
)

#: Variants of a listed type with the same GPUs that styx does not offer from the catalog.
_GCP_VARIANT_SUFFIXES = ("-nolssd",)

#: GCP series that only exist with GPUs: a type of these the table cannot map is no CPU machine either.
GCP_GPU_ONLY_SERIES = ("a2-", "a3-", "a4-", "a4x-", "g2-", "g4-")

#: GPUs that attach to N1 hosts (limits per GCP's docs; default host sizes as SkyPilot picks them).
GCP_ATTACHABLE: Mapping[str, AttachableGpu] = _ro({
    "T4": AttachableGpu("T4", "nvidia-tesla-t4", _ro({1: (48, 312), 2: (48, 312), 4: (96, 624)}),
                        _ro({1: 4, 2: 8, 4: 48})),
    "V100": AttachableGpu("V100", "nvidia-tesla-v100", _ro({1: (12, 78), 2: (24, 156), 4: (48, 312),
                                                            8: (96, 624)}),
                          _ro({1: 8, 2: 16, 4: 32, 8: 64})),
    "P100": AttachableGpu("P100", "nvidia-tesla-p100", _ro({1: (16, 104), 2: (32, 208), 4: (96, 624)}),
                          _ro({1: 8, 2: 16, 4: 32, 8: 64})),
    "P4": AttachableGpu("P4", "nvidia-tesla-p4", _ro({1: (24, 156), 2: (48, 312), 4: (96, 624)})),
    # K80: GCP stopped selling it (2024-05-01); kept so an old catalog listing it is read the same way
    "K80": AttachableGpu("K80", "nvidia-tesla-k80", _ro({1: (8, 52), 2: (16, 104), 4: (32, 208), 8: (64, 208)}),
                         _ro({1: 4, 2: 8, 4: 16, 8: 32}), retired=True),
})

#: Default host for an attached GPU without cpus/memory: these vCPUs per GPU count, 4 GiB per vCPU.
_DEFAULT_CPUS = {1: 8, 2: 16, 4: 32, 8: 64, 16: 128}
N1_DEFAULT_MEMORY_PER_CPU = 4.0

_G_SMALL = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1}

#: AWS GPU instance families (catalog ``AcceleratorName`` spelling).
AWS_FAMILIES: tuple[GpuFamily, ...] = (
    GpuFamily("aws", "p3.", "V100", _ro({"2xlarge": 1, "8xlarge": 4, "16xlarge": 8})),
    GpuFamily("aws", "p3dn.", "V100-32GB", _ro({"24xlarge": 8})),
    GpuFamily("aws", "p4d.", "A100", _ro({"24xlarge": 8})),
    GpuFamily("aws", "p4de.", "A100-80GB", _ro({"24xlarge": 8})),
    GpuFamily("aws", "p5.", "H100", _ro({"4xlarge": 1, "48xlarge": 8})),
    GpuFamily("aws", "p5e.", "H200", _ro({"48xlarge": 8})),
    GpuFamily("aws", "p5en.", "H200", _ro({"48xlarge": 8})),
    GpuFamily("aws", "p6-b200.", "B200", _ro({"48xlarge": 8})),
    GpuFamily("aws", "p6-b300.", "B300", _ro({"48xlarge": 8})),
    GpuFamily("aws", "g4dn.", "T4", _ro({**_G_SMALL, "12xlarge": 4, "metal": 8})),
    GpuFamily("aws", "g5.", "A10G", _ro({**_G_SMALL, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8})),
    GpuFamily("aws", "g5g.", "T4G", _ro({"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 2,
                                         "metal": 2})),
    GpuFamily("aws", "g6.", "L4", _ro({**_G_SMALL, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8})),
    GpuFamily("aws", "g6e.", "L40S", _ro({**_G_SMALL, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8})),
)

# Names that appear in catalogs without a family above (Lambda, Azure, other GCP GPUs), for spelling only.
_OTHER_NAMES = ("A10", "A40", "A6000", "GH200", "L40", "RTX6000", "RTX4090")

#: lowercase name -> the catalog's spelling, for every accelerator name styx knows (case-insensitive match).
KNOWN_ACCELERATORS: Mapping[str, str] = _ro({
    n.lower(): n
    for n in (*_OTHER_NAMES, *GCP_ATTACHABLE, *(f.accelerator for f in (*GCP_BUILTIN_FAMILIES, *AWS_FAMILIES)))
})


def _match(families: tuple[GpuFamily, ...], instance_type: str) -> tuple[GpuFamily, str] | None:
    for f in families:
        if instance_type.startswith(f.prefix):
            return f, instance_type[len(f.prefix):]
    return None


def gcp_builtin(machine_type: str) -> MachineGpus | None:
    """The GPUs built into a GCP machine type (``a2-highgpu-8g`` -> A100 x 8), or None (N1, CPU types)."""
    base, variant = machine_type, False
    for suf in _GCP_VARIANT_SUFFIXES:
        if machine_type.endswith(suf):
            base, variant = machine_type[: -len(suf)], True
    hit = _match(GCP_BUILTIN_FAMILIES, base)
    if hit is None:
        return None
    f, size = hit
    count = f.sizes.get(size)
    return MachineGpus(f.accelerator, count, f.in_catalog and not variant and count is not None)


def aws_gpus(instance_type: str) -> MachineGpus | None:
    """The GPUs of an AWS instance type (``p4d.24xlarge`` -> A100 x 8), or None (not a GPU family here)."""
    hit = _match(AWS_FAMILIES, instance_type)
    if hit is None:
        return None
    f, size = hit
    count = f.sizes.get(size)
    return MachineGpus(f.accelerator, count, count is not None)


def instance_gpus(cloud: str, instance_type: str) -> MachineGpus | None:
    """The GPUs that come with an instance type of ``cloud`` (not GCP's attachable ones)."""
    if cloud == "gcp":
        return gcp_builtin(instance_type)
    if cloud == "aws":
        return aws_gpus(instance_type)
    return None


def attachable(name: str) -> AttachableGpu | None:
    """An N1-attachable GPU by name (case-insensitive), or by its guest type (``nvidia-tesla-t4``)."""
    low = name.lower()
    for a in GCP_ATTACHABLE.values():
        if a.name.lower() == low or a.guest_type == low:
            return a
    return None


def n1_default_min_cpus(accelerator: str, count: int | float) -> float:
    """vCPUs of the default N1 host for ``count`` attached ``accelerator`` GPUs (SkyPilot's defaults)."""
    a = GCP_ATTACHABLE.get(accelerator)
    table = a.default_cpus if a is not None and a.default_cpus is not None else _DEFAULT_CPUS
    return float(table.get(int(count), _DEFAULT_CPUS.get(int(count), 8)))
