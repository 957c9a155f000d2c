// VM actions (start, stop, restart, pause, unpause, delete, and migrate where the API offers it), shown only
// to users RBAC lets act, destructive ones behind a confirmation dialog.
import { useEffect, useRef, useState } from "preact/hooks";
import { SUBRESOURCES, can, del, get, put, vmPath } from "./api.js";

const VMI_SUBS = `${SUBRESOURCES}/namespaces`;

const ACTIONS = {
  start: { label: "Start", call: (ns, n) => put(`${VMI_SUBS}/${ns}/virtualmachines/${n}/start`, {}) },
  stop: {
    label: "Stop", confirm: "The guest is shut down; anything not saved to a persistent disk is lost.",
    call: (ns, n) => put(`${VMI_SUBS}/${ns}/virtualmachines/${n}/stop`, {}),
  },
  restart: {
    label: "Restart", confirm: "The guest is stopped and started again.",
    call: (ns, n) => put(`${VMI_SUBS}/${ns}/virtualmachines/${n}/restart`, {}),
  },
  pause: { label: "Pause", call: (ns, n) => put(`${VMI_SUBS}/${ns}/virtualmachineinstances/${n}/pause`, {}) },
  unpause: { label: "Unpause", call: (ns, n) => put(`${VMI_SUBS}/${ns}/virtualmachineinstances/${n}/unpause`, {}) },
  migrate: {
    label: "Migrate", confirm: "The running guest moves to another node.",
    call: (ns, n) => put(`${VMI_SUBS}/${ns}/virtualmachines/${n}/migrate`, {}),
  },
  delete: {
    label: "Delete", danger: true, confirm: "The VirtualMachine and its running instance are removed for good.",
    call: (ns, n) => del(vmPath(ns, n)),
  },
};

let migrateOffered = null; // does this cluster's subresources API have virtualmachines/migrate?
async function offersMigrate() {
  if (migrateOffered === null) {
    migrateOffered = get(SUBRESOURCES)
      .then((list) => (list.resources || []).some((r) => r.name === "virtualmachines/migrate"))
      .catch(() => false);
  }
  return migrateOffered;
}

// What this user may do in a namespace, asked once per namespace.
const permissionCache = new Map();
export function usePermissions(ns) {
  const [perms, setPerms] = useState(permissionCache.get(ns) || null);
  useEffect(() => {
    if (permissionCache.has(ns)) return setPerms(permissionCache.get(ns));
    Promise.all([
      can("update", "subresources.kubevirt.io", "virtualmachines", ns, "start"),
      can("update", "subresources.kubevirt.io", "virtualmachineinstances", ns, "pause"),
      can("delete", "kubevirt.io", "virtualmachines", ns),
      can("create", "kubevirt.io", "virtualmachines", ns),
      can("get", "subresources.kubevirt.io", "virtualmachineinstances", ns, "console"),
      can("get", "subresources.kubevirt.io", "virtualmachineinstances", ns, "vnc"),
      offersMigrate(),
    ]).then(([power, pause, remove, create, console, vnc, migrate]) => {
      const value = { power, pause, remove, create, console, vnc, migrate: migrate && power };
      permissionCache.set(ns, value);
      setPerms(value);
    });
  }, [ns]);
  return perms;
}

export function availableActions(row, perms) {
  if (!perms) return [];
  const running = Boolean(row.vmi) && ["Running", "Paused", "Starting", "Migrating"].includes(row.status);
  const stopped = !row.vmi || ["Stopped", "Succeeded", "Failed", "CrashLoopBackOff"].includes(row.status);
  const out = [];
  if (perms.power && stopped) out.push("start");
  if (perms.power && running) out.push("stop", "restart");
  if (perms.pause && running && !row.paused) out.push("pause");
  if (perms.pause && row.paused) out.push("unpause");
  if (perms.migrate && running && !row.paused) out.push("migrate");
  if (perms.remove) out.push("delete");
  return out;
}

function ConfirmDialog({ action, name, onConfirm, onCancel }) {
  const ref = useRef(null);
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);
  const spec = ACTIONS[action];
  return (
    <dialog ref={ref} class="confirm" aria-labelledby="confirm-title" aria-describedby="confirm-text"
      onCancel={(e) => { e.preventDefault(); onCancel(); }}>
      <h2 id="confirm-title">{spec.label} {name}?</h2>
      <p id="confirm-text">{spec.confirm}</p>
      <div class="buttons">
        <button type="button" onClick={onCancel} autofocus>Cancel</button>
        <button type="button" class={spec.danger ? "danger" : "primary"} onClick={onConfirm}>{spec.label}</button>
      </div>
    </dialog>
  );
}

export function Actions({ row, perms, onDeleted, compact = false }) {
  const [pending, setPending] = useState(null);
  const [busy, setBusy] = useState(null);
  const [message, setMessage] = useState(null);
  const actions = availableActions(row, perms);
  if (perms && actions.length === 0) {
    return <span class="muted">View only</span>;
  }

  async function run(action) {
    setPending(null);
    setBusy(action);
    setMessage(null);
    try {
      await ACTIONS[action].call(row.namespace, row.name);
      setMessage({ ok: true, text: `${ACTIONS[action].label}: requested for ${row.name}` });
      if (action === "delete" && onDeleted) onDeleted();
    } catch (err) {
      setMessage({ ok: false, text: `${ACTIONS[action].label} ${row.name} failed: ${err.message}` });
    } finally {
      setBusy(null);
    }
  }

  return (
    <div class={compact ? "actions compact" : "actions"}>
      <div class="buttons" role="group" aria-label={`Actions for ${row.name}`}>
        {actions.map((action) => (
          <button type="button" key={action} class={ACTIONS[action].danger ? "danger" : ""} disabled={busy !== null}
            aria-label={`${ACTIONS[action].label} ${row.name}`}
            onClick={() => (ACTIONS[action].confirm ? setPending(action) : run(action))}>
            {busy === action ? `${ACTIONS[action].label}…` : ACTIONS[action].label}
          </button>
        ))}
      </div>
      <p class={message && !message.ok ? "error" : "notice"} role="status" aria-live="polite">
        {message ? message.text : ""}
      </p>
      {pending && <ConfirmDialog action={pending} name={row.name} onConfirm={() => run(pending)}
        onCancel={() => setPending(null)} />}
    </div>
  );
}
