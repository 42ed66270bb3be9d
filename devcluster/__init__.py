"""A local OpenSearch cluster on loopback, one JVM per node (deploy/opensearch-cluster).

Operators try the scale-out path with `python -m devcluster start --data DIR`; the test
suite starts one such cluster per run through `start()`.
"""

from devcluster.cluster import RunningCluster, attach, start, stop_dir
from devcluster.errors import ClusterError

__all__ = ["ClusterError", "RunningCluster", "attach", "start", "stop_dir"]
