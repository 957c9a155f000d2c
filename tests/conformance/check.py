"""Upstream-style manifests (manifests.yaml beside this file) through a real API server and virt-api's
webhooks with kubectl's default strict field validation: each must be accepted, or refused naming its
feature (annotation conformance.kubevirt-ops/refused: <field path>).

    python -m tests.conformance.check KUBECONFIG NAMESPACE   # against any cluster; prints the fraction

The integration test (tests/integration/test_virtapi.py) and the e2e test run it.
"""
import subprocess
import sys
from pathlib import Path

import yaml

REFUSED = "conformance.kubevirt-ops/refused"
MANIFESTS = Path(__file__).resolve().parent / "manifests.yaml"


def documents():
    return [d for d in yaml.safe_load_all(MANIFESTS.read_text()) if d]


def run(kubectl: list[str], namespace: str) -> list[tuple[str, bool, str]]:
    """(object, as expected?, what kubectl said) for each manifest, sent to `namespace`."""
    results = []
    cluster_scoped = []
    try:
        for doc in documents():
            name = f"{doc['kind']}/{doc['metadata']['name']}"
            expected = (doc["metadata"].get("annotations") or {}).get(REFUSED)
            # instancetypes and preferences are stored, so the VMs after them can name them; the rest is a
            # server-side dry run (admission and validation, nothing stored, nothing started)
            dry_run = [] if doc["apiVersion"].startswith("instancetype.") else ["--dry-run=server"]
            proc = subprocess.run([*kubectl, "create", "-n", namespace, *dry_run, "-f", "-"],
                                  input=yaml.safe_dump(doc), capture_output=True, text=True, timeout=60)
            if proc.returncode == 0 and "Cluster" in doc["kind"]:
                cluster_scoped.append(doc)
            said = (proc.stdout + proc.stderr).strip()
            if expected:
                ok = proc.returncode != 0 and f"{expected}:" in said and "unknown field" not in said
            else:
                ok = proc.returncode == 0
            results.append((name, ok, said))
    finally:
        for doc in cluster_scoped:
            subprocess.run([*kubectl, "delete", doc["kind"], doc["metadata"]["name"], "--wait=false"],
                           capture_output=True, timeout=60)
    return results


def report(results) -> str:
    good = sum(ok for _, ok, _ in results)
    lines = [f"conformance: {good}/{len(results)} manifests as expected"]
    lines += [f"  UNEXPECTED {name}: {said[:300]}" for name, ok, said in results if not ok]
    return "\n".join(lines)



if __name__ == "__main__":
    out = run(["kubectl", f"--kubeconfig={sys.argv[1]}"], sys.argv[2])
    print(report(out))
    sys.exit(0 if all(ok for _, ok, _ in out) else 1)
