"""virt-importer: CDI's importer, uploader and clone pod in one program (main.py), for DataVolumes and the copy
steps of VM snapshots and restores. It runs in pods virt-controller makes (controller/importer_pod.py) and
only touches the PVCs mounted into its pod; virt-controller reads its progress and its termination message."""
