// The create form's pure parts: checking the fields and turning them into a VirtualMachine (node --test covers them).
import { DNS_LABEL } from "./util.js";

export const DEMO_IMAGE = "docker.io/kubevirt-ops/demo-disk:devel";
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$/;

// The SSH key goes where the guest will find it: cloud-config's ssh_authorized_keys, or, for a user-data
// script (like the demo disk's), a line that adds it to root's authorized_keys.
export function userDataWithKey(userData, key) {
  const data = userData.trim();
  key = key.trim();
  if (!key) return data;
  if (!data) return `#cloud-config\nssh_authorized_keys:\n  - ${key}\n`;
  if (data.startsWith("#cloud-config")) {
    if (/^ssh_authorized_keys:[ \t]*$/m.test(data)) {
      return `${data.replace(/^ssh_authorized_keys:[ \t]*$/m, `ssh_authorized_keys:\n  - ${key}`)}\n`;
    }
    return `${data}\nssh_authorized_keys:\n  - ${key}\n`;
  }
  const line = `mkdir -p /root/.ssh && echo '${key.replaceAll("'", "")}' >> /root/.ssh/authorized_keys`;
  return `${data}\n${line}\n`;
}

export function buildVM(form) {
  const spec = {
    domain: { devices: {
      disks: [{ name: "containerdisk", disk: { bus: "virtio" } }],
      interfaces: [{ name: "default", masquerade: {} }],
    } },
    networks: [{ name: "default", pod: {} }],
    volumes: [{ name: "containerdisk", containerDisk: { image: form.image.trim(), imagePullPolicy: "IfNotPresent" } }],
  };
  if (!form.instancetype) {
    spec.domain.cpu = { cores: Number(form.cpu) };
    spec.domain.memory = { guest: form.memory.trim() };
    spec.domain.resources = { requests: { memory: form.memory.trim() } };
  }
  const userData = userDataWithKey(form.userData, form.sshKey);
  if (userData) {
    spec.domain.devices.disks.push({ name: "cloudinitdisk", disk: { bus: "virtio" } });
    spec.volumes.push({ name: "cloudinitdisk", cloudInitNoCloud: { userData } });
  }
  const vm = {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachine",
    metadata: { name: form.name.trim(), namespace: form.namespace.trim() },
    spec: { runStrategy: "Always", template: { metadata: { labels: { "kubevirt.io/domain": form.name.trim() } }, spec } },
  };
  if (form.instancetype) vm.spec.instancetype = { name: form.instancetype, kind: "VirtualMachineClusterInstancetype" };
  return vm;
}

export function validate(form) {
  const errors = {};
  if (!DNS_LABEL.test(form.name.trim()) || form.name.trim().length > 63) {
    errors.name = "Use lower-case letters, digits and '-', starting and ending with a letter or digit (at most 63).";
  }
  if (!DNS_LABEL.test(form.namespace.trim())) errors.namespace = "Enter an existing namespace.";
  if (!form.image.trim()) errors.image = "Enter the containerDisk image.";
  if (!form.instancetype) {
    if (!(Number(form.cpu) >= 1 && Number.isInteger(Number(form.cpu)))) errors.cpu = "Enter a whole number of cores (1 or more).";
    if (!QUANTITY.test(form.memory.trim())) errors.memory = "Enter a quantity such as 128Mi or 1Gi.";
  }
  if (form.sshKey.trim() && !/^(ssh-|ecdsa-|sk-)\S+ \S+/.test(form.sshKey.trim())) {
    errors.sshKey = "Paste a public key line, e.g. ssh-ed25519 AAAA… user@host.";
  }
  return errors;
}
