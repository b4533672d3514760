"""unmask: samplers for masked (absorbing-state) diffusion models."""

from unmask.samplers import SampleOutput, build, registered_samplers

__all__ = ["SampleOutput", "build", "registered_samplers"]
__version__ = "0.1.0"
