#!/usr/bin/python
"""Ansible module: the cluster's certificate authorities, certificates and key pairs."""
from __future__ import annotations

DOCUMENTATION = r"""
module: pki
short_description: Make a cluster PKI (CAs, signed certificates, key pairs), idempotently
description:
  - Creates what is missing, renews what expires within 30 days or no longer matches the request
    (subject, organizations, SANs, usages, issuer), and leaves the rest alone, so C(changed) is honest.
  - Keys are ECDSA P-256. Runs where the C(cryptography) library is installed (the controller).
  - In check mode nothing is written; C(created) lists what would be made. The diff names each of them with
    the subject and expiry of the certificate it replaces, never a key.
options:
  dir: {description: Directory holding NAME.crt / NAME.key files., type: path, required: true}
  authorities:
    description: CAs to ensure.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {type: str, required: true, description: File stem (may contain a sub directory).}
      common_name: {type: str, required: true, description: Subject CN.}
  certificates:
    description: Certificates to ensure, each signed by one of the CAs.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {type: str, required: true, description: File stem.}
      ca: {type: str, required: true, description: Stem of the signing CA.}
      common_name: {type: str, required: true, description: Subject CN.}
      organizations: {type: list, elements: str, default: [], description: Subject O (Kubernetes groups).}
      usages:
        {type: list, elements: str, default: [client], choices: [client, server], description: Extended key usages.}
      dns_names: {type: list, elements: str, default: [], description: DNS SANs.}
      ip_addresses: {type: list, elements: str, default: [], description: IP SANs.}
  key_pairs:
    description: Bare key pairs (NAME.key + NAME.pub), e.g. for service-account tokens.
    type: list
    elements: str
    default: []
attributes:
  check_mode: {support: full, description: Predicts C(changed) and the diff without changing anything.}
  diff_mode: {support: full, description: Shows what changes (or would change in check mode).}
author: [kubevirt-ops developers (!UNKNOWN)]
"""

EXAMPLES = r"""
- name: Cluster CA and the apiserver's serving certificate
  kubevirt.ops.pki:
    dir: /root/.local/state/kubevirt-ops/c1/pki
    authorities: [{name: ca, common_name: kubernetes}]
    certificates:
      - {name: apiserver, ca: ca, common_name: kube-apiserver, usages: [server], ip_addresses: [10.96.0.1]}
    key_pairs: [sa]
"""

RETURN = r"""
created: {description: Stems of the files made or renewed in this run., type: list, returned: always}
"""

import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.kubevirt.ops.plugins.module_utils import pki


def main():
    cert_spec = dict(
        name=dict(type="str", required=True), ca=dict(type="str", required=True),
        common_name=dict(type="str", required=True),
        organizations=dict(type="list", elements="str", default=[]),
        usages=dict(type="list", elements="str", default=["client"], choices=["client", "server"]),
        dns_names=dict(type="list", elements="str", default=[]),
        ip_addresses=dict(type="list", elements="str", default=[]),
    )
    module = AnsibleModule(
        argument_spec=dict(
            dir=dict(type="path", required=True),
            authorities=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True), common_name=dict(type="str", required=True))),
            certificates=dict(type="list", elements="dict", default=[], options=cert_spec),
            key_pairs=dict(type="list", elements="str", default=[], no_log=False),
        ),
        supports_check_mode=True,
    )
    if pki.CRYPTOGRAPHY_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=pki.CRYPTOGRAPHY_IMPORT_ERROR)
    p = module.params
    write = not module.check_mode
    created, before = [], {}
    try:
        for ca in p["authorities"]:
            before[ca["name"]] = pki.describe(p["dir"], ca["name"])
            if pki.ensure_authority(p["dir"], ca["name"], ca["common_name"], write=write)[2]:
                created.append(ca["name"])
        for c in p["certificates"]:
            before[c["name"]] = pki.describe(p["dir"], c["name"])
            # A CA made anew in this run re-issues what it signs; check mode cannot verify against it.
            if (c["ca"] in created and not write) or pki.ensure_certificate(
                    p["dir"], c["name"], c["ca"], c["common_name"], c["organizations"], c["usages"],
                    c["dns_names"], c["ip_addresses"], write=write):
                created.append(c["name"])
        for name in p["key_pairs"]:
            before[name] = "present" if os.path.exists(os.path.join(p["dir"], f"{name}.key")) else "absent"
            if pki.ensure_key_pair(p["dir"], name, write=write):
                created.append(name)
    except ValueError as e:
        module.fail_json(msg=str(e), created=created, changed=bool(created))
    result = dict(changed=bool(created), created=created)
    if module._diff:
        result["diff"] = {"before_header": p["dir"], "after_header": p["dir"],
                          "before": "".join(f"{name}: {before[name]}\n" for name in created),
                          "after": "".join(f"{name}: new key and certificate\n" if name not in p["key_pairs"]
                                           else f"{name}: new key pair\n" for name in created)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
