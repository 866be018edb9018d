"""The GPU probe: which of llama.cpp's devices count as GPUs and what memory they report
(from a fake device list, since this machine has no GPU), and the real device API on
this CPU build of llama.cpp."""

from __future__ import annotations

from dataclasses import dataclass

from llamadesk.services.engine import supports_gpu_offload
from llamadesk.services.gpu_probe import (
    DEVICE_TYPE_ACCEL,
    DEVICE_TYPE_CPU,
    DEVICE_TYPE_GPU,
    DEVICE_TYPE_IGPU,
    GpuDevice,
    GpuMemory,
    ggml_device_api,
    probe_gpus,
    read_gpus,
)

GB = 1_000_000_000


@dataclass(frozen=True)
class FakeDevice:
    kind: int
    backend: str
    name: str
    free: int
    total: int


class FakeDeviceList:
    """A stand-in for ggml's device API with the devices a GPU machine would list."""

    def __init__(self, *devices: FakeDevice, broken: bool = False) -> None:
        self.devices = devices
        self.broken = broken

    def count(self) -> int:
        return len(self.devices)

    def kind(self, index: int) -> int:
        return self.devices[index].kind

    def backend(self, index: int) -> str:
        return self.devices[index].backend

    def name(self, index: int) -> str:
        return self.devices[index].name

    def description(self, index: int) -> str:
        return f"{self.devices[index].name} card"

    def memory(self, index: int) -> tuple[int, int]:
        if self.broken:
            raise OSError("the driver went away")
        return self.devices[index].free, self.devices[index].total


CPU = FakeDevice(DEVICE_TYPE_CPU, "CPU", "CPU", 30 * GB, 64 * GB)
CUDA0 = FakeDevice(DEVICE_TYPE_GPU, "CUDA", "CUDA0", 20 * GB, 24 * GB)


def test_only_dedicated_gpus_count() -> None:
    fake = FakeDeviceList(
        CPU, CUDA0,
        FakeDevice(DEVICE_TYPE_IGPU, "Vulkan", "Vulkan1", 30 * GB, 64 * GB),  # shares RAM
        FakeDevice(DEVICE_TYPE_ACCEL, "BLAS", "BLAS", 0, 0),
        FakeDevice(DEVICE_TYPE_GPU, "RPC", "RPC0", 40 * GB, 48 * GB),  # another machine
        FakeDevice(DEVICE_TYPE_GPU, "Odd", "Odd0", 0, 0),  # says nothing of its memory
    )
    gpus = read_gpus(fake)
    assert gpus.devices == (GpuDevice("CUDA0", "CUDA0 card", 20 * GB, 24 * GB),)
    assert gpus.free_bytes == 20 * GB and gpus.total_bytes == 24 * GB


def test_several_gpus_add_up_and_odd_numbers_are_clamped() -> None:
    fake = FakeDeviceList(CPU, CUDA0, FakeDevice(DEVICE_TYPE_GPU, "CUDA", "CUDA1",
                                                 30 * GB, 24 * GB))
    gpus = read_gpus(fake)
    assert [d.free_bytes for d in gpus.devices] == [20 * GB, 24 * GB]
    assert gpus.free_bytes == 44 * GB and gpus.total_bytes == 48 * GB


def test_no_gpu_means_no_numbers() -> None:
    gpus = read_gpus(FakeDeviceList(CPU))
    assert gpus == GpuMemory() and gpus.free_bytes is None and gpus.total_bytes is None


def test_a_device_that_cannot_be_read_counts_as_no_gpu() -> None:
    assert probe_gpus(FakeDeviceList(CPU, CUDA0, broken=True)) == GpuMemory()


def test_the_real_device_api_on_this_build() -> None:
    api = ggml_device_api()
    assert api is not None
    kinds = [api.kind(i) for i in range(api.count())]
    assert DEVICE_TYPE_CPU in kinds
    cpu = kinds.index(DEVICE_TYPE_CPU)
    free, total = api.memory(cpu)  # the CPU backend reports the machine's RAM
    assert 0 < free <= total
    assert api.backend(cpu) == "CPU" and api.name(cpu)
    # The probe and llama.cpp's own answer agree on whether there is a GPU to use.
    assert bool(probe_gpus().devices) == supports_gpu_offload()
