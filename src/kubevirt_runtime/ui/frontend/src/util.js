// Small view helpers: what a VM's row shows, ages, conditions.

export function condition(obj, type) {
  return ((obj && obj.status && obj.status.conditions) || []).find((c) => c.type === type);
}

export function age(timestamp, now = Date.now()) {
  if (!timestamp) return "";
  const seconds = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

export function vmRow(vm, vmi) {
  const status = (vm.status && vm.status.printableStatus) || "Unknown";
  const ready = condition(vm, "Ready");
  const iface = ((vmi && vmi.status && vmi.status.interfaces) || [])[0] || {};
  return {
    key: vm.metadata.uid,
    name: vm.metadata.name,
    namespace: vm.metadata.namespace,
    status,
    ip: iface.ipAddress || "",
    node: (vmi && vmi.status && vmi.status.nodeName) || "",
    created: vm.metadata.creationTimestamp,
    ready: ready ? ready.status === "True" : false,
    paused: Boolean(vmi && condition(vmi, "Paused") && condition(vmi, "Paused").status === "True"),
    vm,
    vmi,
  };
}

export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function navigate(hash) {
  if (location.hash !== hash) location.hash = hash;
}
