"""The KubeVirt CR, followed by an informer: `current()` is the cluster configuration right now.

Components read it where they use it (creating a pod, starting a domain), so a change of the CR applies to
the next VMI without a restart. Without a KubeVirt object the defaults apply; without its CRD (a bare
API server in tests) nothing is followed.
"""
import logging

from kubevirt_runtime.api.cluster_config import ClusterConfig

from .informer import Informer
from .resource import ApiError, Resource, ResourceClient

log = logging.getLogger(__name__)

KUBEVIRTS = Resource("kubevirt.io", "v1", "kubevirts", kind="KubeVirt")


class ClusterConfigSource:
    def __init__(self, api_client, namespace: str = "kubevirt", counters=()):
        self.client = ResourceClient(api_client, KUBEVIRTS, counters)
        self.namespace = namespace
        self.informer = Informer(self.client, namespace)

    def start(self, sync_timeout: float = 10.0) -> "ClusterConfigSource":
        """Starts following the CR; waits at most `sync_timeout` for the first list (the defaults apply until
        then)."""
        try:
            self.client.list(self.namespace, limit=1)
        except ApiError as exc:
            if exc.not_found:
                log.info("no KubeVirt CRD: the configuration defaults apply")
                return self
        except Exception:  # the informer retries
            pass
        self.informer.start()
        self.informer.wait_for_sync(sync_timeout)
        return self

    def stop(self) -> None:
        self.informer.stop()

    def current(self) -> ClusterConfig:
        items = sorted(self.informer.store.list(), key=lambda kv: kv["metadata"].get("creationTimestamp") or "")
        return ClusterConfig.from_kubevirt(items[0] if items else None)


class StaticClusterConfig:
    """A fixed configuration (tests, local runs)."""

    def __init__(self, config: ClusterConfig | None = None):
        self.config = config or ClusterConfig()

    def current(self) -> ClusterConfig:
        return self.config
