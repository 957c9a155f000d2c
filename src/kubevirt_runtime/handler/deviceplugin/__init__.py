"""virt-handler's device plugin: /dev/kvm, /dev/net/tun and /dev/vhost-net for unprivileged launcher pods.

As upstream's virt-handler, one plugin per device, each an extended resource of the node
(devices.kubevirt.io/kvm, /tun, /vhost-net) served over the kubelet's device-plugin gRPC API v1beta1
(stubs in v1beta1/, generated from the k8s.io/kubelet Go module): the plugin listens on
<kubelet root>/device-plugins/kubevirt-<device>.sock, registers there with the kubelet (kubelet.sock),
lists its devices (ListAndWatch) and answers Allocate with the device node the container gets. A launcher
pod asks for them as resources (controller/launcher_pod.py), so it needs no privileged flag to use them.

    devices.py  pure: which devices, what each plugin advertises and allocates
    server.py   the gRPC servers, the registration, and the watch over device nodes and the kubelet
"""
