"""Typed errors raised by library code. Only the CLI turns them into messages and exit codes."""


class LayerscopeError(Exception):
    """Base of every error layerscope reports as one line to the user."""


class UsageError(LayerscopeError):
    """The command line itself is wrong (unknown format, bad option value)."""


class SourceError(LayerscopeError):
    """The reference cannot be opened: missing path, not an image, unknown tag or platform."""


class EngineError(SourceError):
    """The Docker engine is unreachable or does not have the image."""


class ArchiveError(LayerscopeError):
    """The image was found but its content is broken: truncated or corrupt blob, missing blob."""


class ConfigError(LayerscopeError):
    """A gate configuration that is missing, unreadable, or names an unknown key or a wrong value."""


class OutputError(LayerscopeError):
    """The report cannot be written where it was asked to go (-o, --junit, $GITHUB_STEP_SUMMARY)."""
