// Create a VM from a form: containerDisk image, CPU and memory (or an instancetype, where the API has them),
// cloud-init user data and an SSH key.
import { useEffect, useState } from "preact/hooks";
import { get, post, vmPath } from "./api.js";
import { navigate } from "./util.js";
import { DEMO_IMAGE, buildVM, validate } from "./vmform.js";

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
  const set = (key) => (e) => {
    setForm({ ...form, [key]: e.currentTarget.value });
    if (errors[key]) setErrors({ ...errors, [key]: undefined }); // re-checked on the next submit
  };
  const describedBy = (id, help) => [help ? `${id}-help` : "", errors[id] ? `${id}-error` : ""].join(" ").trim() || undefined;

  async function submit(event) {
    event.preventDefault();
    const found = Object.fromEntries(Object.entries(validate(form)).filter(([, v]) => v));
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
