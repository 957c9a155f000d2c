"""An ApiClient from a kubeconfig file, or from the in-cluster service account."""
import os

from kubernetes import client, config


def load_api_client(kubeconfig=None, context=None, qps_pool_size=16):
    """kubeconfig path (or $KUBECONFIG) if given, else in-cluster config."""
    configuration = client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = qps_pool_size
    return client.ApiClient(configuration)
