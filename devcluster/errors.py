"""The launcher's one exception type: every message says what to do or where to look."""


class ClusterError(RuntimeError):
    """The cluster could not be built, started, reached or stopped."""
