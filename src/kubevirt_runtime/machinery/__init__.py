"""Controller machinery shared by virt-controller, virt-handler and virt-api (client-go's ideas in Python).

- resource.py: ``ResourceClient(api_client, Resource)``: dict-in/dict-out REST with list/watch/get/create/
  update/patch/patch_status/delete; ``ApiError``; well-known ``Resource``s (PODS, VMS, VMIS, LEASES, ...).
- informer.py: ``Informer(client, namespace=, label_selector=, field_selector=, indexers=)``: list+watch
  into a ``Store``; resumes from resourceVersion, relists on 410 Gone, uses bookmarks.
- store.py: ``Store`` with indexes; ``object_key``/``split_key``; index helpers.
- workqueue.py / ratelimit.py: ``RateLimitingQueue`` (dedup, add_after, add_rate_limited, forget) with
  client-go's default limiter (5 ms -> 1000 s per item, 10 qps / 100 burst).
- expectations.py: ``ControllerExpectations`` for creates and deletes.
- leaderelection.py: ``LeaderElector`` on a coordination.k8s.io Lease.
- health.py: ``HealthServer`` for /healthz, /readyz, /metrics.
- events.py: ``EventRecorder``; logs.py: ``setup_logging`` (JSON lines).
- streams.py: ``read_head`` (an HTTP response head off a socket) and ``splice`` (bytes both ways between
  two sockets, TLS-aware), for relayed upgrades.
- kubeconfig.py: ``load_api_client(kubeconfig=None)`` (in-cluster when no kubeconfig is given).
"""
