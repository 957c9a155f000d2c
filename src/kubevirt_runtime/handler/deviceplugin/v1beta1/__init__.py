"""Python stubs of the kubelet's device-plugin API v1beta1, generated: see PROVENANCE."""
