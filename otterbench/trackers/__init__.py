"""Measurement trackers: context managers that return dataclasses whose field names carry units."""

from otterbench.trackers.energy import EnergyRecord, EnergyTracker
from otterbench.trackers.latency import LatencyRecord, NullObserver, StepObserver, StepTimer
from otterbench.trackers.memory import MemoryRecord, MemoryTracker, PhaseMemory, weights_bytes

__all__ = [
    "EnergyRecord",
    "EnergyTracker",
    "LatencyRecord",
    "MemoryRecord",
    "MemoryTracker",
    "NullObserver",
    "PhaseMemory",
    "StepObserver",
    "StepTimer",
    "weights_bytes",
]
