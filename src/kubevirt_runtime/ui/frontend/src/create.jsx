// Create a VM from a form: containerDisk image, CPU and memory (or an instancetype, where the API has them),
// cloud-init user data and an SSH key.
import { useEffect, useState } from "preact/hooks";
import { get, post, vmPath } from "./api.js";
import { DNS_LABEL, navigate } from "./util.js";

const DEMO_IMAGE = "docker.io/kubevirt-ops/demo-disk:devel";
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$/;

// The SSH key goes where the guest will find it: cloud-config's ssh_authorized_keys, or, for a user-data
// script (like the demo disk's), a line that adds it to root's authorized_keys.
export function userDataWithKey(userData, key) {
  const data = userData.trim();
  key = key.trim();
  if (!key) return data;
  if (!data) return `#cloud-config\nssh_authorized_keys:\n  - ${key}\n`;
  if (data.startsWith("#cloud-config")) return `${data}\nssh_authorized_keys:\n  - ${key}\n`;
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

function Field({ id, label, error, help, children }) {
  return (
    <div class={error ? "field invalid" : "field"}>
      <label for={id}>{label}</label>
      {children}
      {help && <p class="help" id={`${id}-help`}>{help}</p>}
      {error && <p class="error" id={`${id}-error`}>{error}</p>}
    </div>
  );
}

export function CreateVM({ config }) {
  const [form, setForm] = useState({ name: "", namespace: config.namespace || "default", image: DEMO_IMAGE,
    cpu: "1", memory: "128Mi", userData: "", sshKey: "", instancetype: "" });
  const [errors, setErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const [instancetypes, setInstancetypes] = useState([]);
  useEffect(() => {
    get("/apis/instancetype.kubevirt.io/v1beta1/virtualmachineclusterinstancetypes")
      .then((list) => setInstancetypes((list.items || []).map((i) => i.metadata.name)))
      .catch(() => setInstancetypes([])); // the API has no instancetypes (yet)
  }, []);
  const set = (key) => (e) => setForm({ ...form, [key]: e.currentTarget.value });
  const describedBy = (id, help) => [help ? `${id}-help` : "", errors[id] ? `${id}-error` : ""].join(" ").trim() || undefined;

  async function submit(event) {
    event.preventDefault();
    const found = validate(form);
    setErrors(found);
    setFailure(null);
    if (Object.keys(found).length) {
      document.getElementById(Object.keys(found)[0]).focus();
      return;
    }
    setBusy(true);
    try {
      const vm = buildVM(form);
      await post(vmPath(vm.metadata.namespace), vm);
      navigate(`#/vms/${encodeURIComponent(vm.metadata.namespace)}/${encodeURIComponent(vm.metadata.name)}`);
    } catch (err) {
      setFailure(err.message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="create-title">
      <h1 id="create-title">Create a virtual machine</h1>
      <form class="create" onSubmit={submit} noValidate>
        <Field id="name" label="Name" error={errors.name}>
          <input id="name" required value={form.name} onInput={set("name")} autocomplete="off"
            aria-invalid={Boolean(errors.name)} aria-describedby={describedBy("name")} />
        </Field>
        <Field id="namespace" label="Namespace" error={errors.namespace}>
          <input id="namespace" required value={form.namespace} onInput={set("namespace")}
            aria-invalid={Boolean(errors.namespace)} aria-describedby={describedBy("namespace")} />
        </Field>
        <Field id="image" label="containerDisk image" error={errors.image}
          help="An image with the disk under /disk; the demo disk is imported on every node.">
          <input id="image" required value={form.image} onInput={set("image")}
            aria-invalid={Boolean(errors.image)} aria-describedby={describedBy("image", true)} />
        </Field>
        {instancetypes.length > 0 && (
          <Field id="instancetype" label="Instancetype" help="Sets CPU and memory; leave empty to set them here.">
            <select id="instancetype" value={form.instancetype} onChange={set("instancetype")}
              aria-describedby="instancetype-help">
              <option value="">None</option>
              {instancetypes.map((n) => <option key={n} value={n}>{n}</option>)}
            </select>
          </Field>
        )}
        {!form.instancetype && (
          <div class="pair">
            <Field id="cpu" label="CPU cores" error={errors.cpu}>
              <input id="cpu" type="number" min="1" step="1" required value={form.cpu} onInput={set("cpu")}
                aria-invalid={Boolean(errors.cpu)} aria-describedby={describedBy("cpu")} />
            </Field>
            <Field id="memory" label="Memory" error={errors.memory} help="For example 128Mi or 1Gi.">
              <input id="memory" required value={form.memory} onInput={set("memory")}
                aria-invalid={Boolean(errors.memory)} aria-describedby={describedBy("memory", true)} />
            </Field>
          </div>
        )}
        <Field id="userData" label="Cloud-init user data (optional)"
          help="A #cloud-config document, or a script starting with #! (the demo disk runs scripts).">
          <textarea id="userData" rows="5" value={form.userData} onInput={set("userData")} spellcheck={false}
            aria-describedby="userData-help" />
        </Field>
        <Field id="sshKey" label="SSH public key (optional)" error={errors.sshKey}
          help="Added for root through the user data.">
          <textarea id="sshKey" rows="2" value={form.sshKey} onInput={set("sshKey")} spellcheck={false}
            aria-invalid={Boolean(errors.sshKey)} aria-describedby={describedBy("sshKey", true)} />
        </Field>
        {failure && <p class="error" role="alert">Could not create the VM: {failure}</p>}
        <div class="buttons">
          <button type="submit" class="primary" disabled={busy}>{busy ? "Creating…" : "Create and start"}</button>
          <a href="#/" class="button">Cancel</a>
        </div>
      </form>
    </section>
  );
}
