"""Structured (JSON lines) logs in KubeVirt's shape: {"component", "level", "msg", "pos", "timestamp", ...}.

Extra fields passed with `extra=` are included, so `log.info("...", extra=obj_fields(vmi))` ties a line to the
object (kind, name, namespace, uid; `obj_name` is printed as "name", which LogRecord reserves).
"""
import datetime
import json
import logging
import sys

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, component):
        super().__init__()
        self.component = component

    def format(self, record):
        entry = {
            "component": self.component,
            "level": {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname, record.levelname.lower()),
            "msg": record.getMessage(),
            "pos": f"{record.filename}:{record.lineno}",
            "timestamp": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry["name" if key == "obj_name" else key] = value
        if record.exc_info:
            entry["reason"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(component, level="info", stream=None):
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for noisy in ("urllib3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def obj_fields(obj):
    """`extra=` fields naming a Kubernetes object in a log line."""
    meta = obj.get("metadata") or {}
    return {"kind": obj.get("kind", ""), "obj_name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", "")}
