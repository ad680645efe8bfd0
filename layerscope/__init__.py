"""layerscope: what is inside a container image, and why it is big."""

__version__ = "0.1.0"
