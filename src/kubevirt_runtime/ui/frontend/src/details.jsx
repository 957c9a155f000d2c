// One VM: overview, actions, conditions, startup timeline, metrics (with Prometheus), events, spec as YAML,
// and its serial console and VNC display.
import { useEffect, useState } from "preact/hooks";
import { stringify } from "yaml";
import { get, vmPath, vmiPath, watchCollection } from "./api.js";
import { Actions, usePermissions } from "./actions.jsx";
import { SerialConsole } from "./console.jsx";
import { VNCDisplay } from "./vnc.jsx";
import { age, navigate, vmRow } from "./util.js";

function useOne(path, name) {
  const [obj, setObj] = useState(undefined);
  const [error, setError] = useState(null);
  useEffect(() => {
    setObj(undefined);
    return watchCollection(`${path}?fieldSelector=metadata.name%3D${encodeURIComponent(name)}`,
      (items) => setObj([...items.values()][0] || null), setError);
  }, [path, name]);
  return [obj, error];
}

function Conditions({ title, obj }) {
  const conditions = (obj && obj.status && obj.status.conditions) || [];
  if (!conditions.length) return null;
  return (
    <table class="plain">
      <caption>{title}</caption>
      <thead><tr><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Reason</th>
        <th scope="col">Message</th><th scope="col">Changed</th></tr></thead>
      <tbody>
        {conditions.map((c) => (
          <tr key={c.type}>
            <th scope="row">{c.type}</th><td>{c.status}</td><td>{c.reason || ""}</td><td>{c.message || ""}</td>
            <td>{c.lastTransitionTime ? `${age(c.lastTransitionTime)} ago` : ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Timeline({ vmi }) {
  const steps = (vmi && vmi.status && vmi.status.phaseTransitionTimestamps) || [];
  if (!steps.length) return <p class="muted">No startup timeline yet (it appears once the instance is created).</p>;
  const created = Date.parse(vmi.metadata.creationTimestamp);
  return (
    <ol class="timeline" aria-label="Phases of the running instance">
      <li><span class="phase">Created</span> <time>{vmi.metadata.creationTimestamp}</time></li>
      {steps.map((s) => (
        <li key={s.phase + s.phaseTransitionTimestamp}>
          <span class="phase">{s.phase}</span> <time>{s.phaseTransitionTimestamp}</time>{" "}
          <span class="muted">(+{((Date.parse(s.phaseTransitionTimestamp) - created) / 1000).toFixed(0)} s)</span>
        </li>
      ))}
    </ol>
  );
}

function Events({ namespace, name }) {
  const [events, setEvents] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    let live = true;
    const load = () => get(`/api/v1/namespaces/${namespace}/events?fieldSelector=involvedObject.name%3D${name}`)
      .then((list) => live && (setEvents(list.items || []), setError(null)))
      .catch((err) => live && setError(err));
    load();
    const timer = setInterval(load, 10000);
    return () => { live = false; clearInterval(timer); };
  }, [namespace, name]);
  if (error) return <p class="error">Cannot read events: {error.message}</p>;
  if (!events) return <p class="loading">Loading…</p>;
  if (!events.length) return <p class="muted">No events.</p>;
  const sorted = [...events].sort((a, b) =>
    Date.parse(b.lastTimestamp || b.eventTime || b.metadata.creationTimestamp) -
    Date.parse(a.lastTimestamp || a.eventTime || a.metadata.creationTimestamp));
  return (
    <table class="plain">
      <caption class="visually-hidden">Events of {name}</caption>
      <thead><tr><th scope="col">Type</th><th scope="col">Reason</th><th scope="col">Object</th>
        <th scope="col">Message</th><th scope="col">Age</th></tr></thead>
      <tbody>
        {sorted.slice(0, 50).map((e) => (
          <tr key={e.metadata.uid}>
            <td>{e.type}</td><th scope="row">{e.reason}</th><td>{e.involvedObject.kind}</td><td>{e.message}</td>
            <td>{age(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const QUERIES = [
  ["CPU (cores)", "sum(rate(kubevirt_vmi_cpu_usage_seconds_total{namespace=\"NS\",name=\"NAME\"}[2m]))", 3],
  ["Memory in use (MiB)", "sum(kubevirt_vmi_memory_resident_bytes{namespace=\"NS\",name=\"NAME\"}) / 1048576", 1],
  ["Network in (KiB/s)", "sum(rate(kubevirt_vmi_network_receive_bytes_total{namespace=\"NS\",name=\"NAME\"}[2m])) / 1024", 1],
  ["Network out (KiB/s)", "sum(rate(kubevirt_vmi_network_transmit_bytes_total{namespace=\"NS\",name=\"NAME\"}[2m])) / 1024", 1],
];

function Metrics({ namespace, name, prometheus }) {
  const [values, setValues] = useState(null);
  const [missing, setMissing] = useState(false);
  useEffect(() => {
    if (!prometheus) return setMissing(true);
    let live = true;
    const [promNs, rest] = prometheus.split("/");
    const base = `/api/v1/namespaces/${promNs}/services/${rest}/proxy/api/v1/query?query=`;
    const load = () => Promise.all(QUERIES.map(([, q]) =>
      get(base + encodeURIComponent(q.replaceAll("NS", namespace).replaceAll("NAME", name)))))
      .then((answers) => live && setValues(answers.map((a) => {
        const result = (a.data && a.data.result) || [];
        return result.length ? Number(result[0].value[1]) : null;
      })))
      .catch(() => live && setMissing(true));
    load();
    const timer = setInterval(load, 15000);
    return () => { live = false; clearInterval(timer); };
  }, [namespace, name, prometheus]);
  if (missing) {
    return <p class="muted">Metrics appear here when Prometheus runs in the cluster{prometheus ? ` (looked for the service ${prometheus})` : ""}.</p>;
  }
  if (!values) return <p class="loading">Loading…</p>;
  return (
    <dl class="facts">
      {QUERIES.map(([label, , digits], i) => (
        <div key={label}><dt>{label}</dt><dd>{values[i] === null ? "no data" : values[i].toFixed(digits)}</dd></div>
      ))}
    </dl>
  );
}

function Consoles({ namespace, name, running, perms }) {
  const [pane, setPane] = useState("serial");
  if (!running) return <p class="muted">The consoles are available while the VM runs.</p>;
  if (perms && !perms.console && !perms.vnc) return <p class="muted">You may not open this VM's consoles.</p>;
  return (
    <div class="consoles">
      <div class="buttons" role="group" aria-label="Console type">
        <button type="button" aria-pressed={pane === "serial"} onClick={() => setPane("serial")}>Serial console</button>
        <button type="button" aria-pressed={pane === "vnc"} onClick={() => setPane("vnc")}>VNC</button>
      </div>
      {pane === "serial" ? <SerialConsole namespace={namespace} name={name} />
        : <VNCDisplay namespace={namespace} name={name} />}
    </div>
  );
}

export function VMDetails({ namespace, name, config }) {
  const [vm, vmError] = useOne(vmPath(namespace), name);
  const [vmi] = useOne(vmiPath(namespace), name);
  const perms = usePermissions(namespace);
  if (vmError && vm === undefined) return <p class="error" role="alert">Cannot read {name}: {vmError.message}</p>;
  if (vm === undefined) return <p class="loading" role="status">Loading…</p>;
  if (vm === null) {
    return (
      <section>
        <h1>{name}</h1>
        <p role="status">There is no virtual machine {name} in {namespace} (any more). <a href="#/">Back to the list</a>.</p>
      </section>
    );
  }
  const row = vmRow(vm, vmi);
  const os = (vmi && vmi.status && vmi.status.guestOSInfo) || {};
  const running = Boolean(vmi) && vmi.status && vmi.status.phase === "Running";
  return (
    <article aria-labelledby="vm-title">
      <p class="crumbs"><a href="#/">Virtual machines</a> / {namespace}</p>
      <div class="title-row">
        <h1 id="vm-title">{name}</h1>
        <span class={`status status-${row.status.toLowerCase()}`} role="status" aria-live="polite">{row.status}</span>
      </div>
      <Actions row={row} perms={perms} onDeleted={() => navigate("#/")} />
      <section aria-labelledby="overview">
        <h2 id="overview">Overview</h2>
        <dl class="facts">
          <div><dt>Namespace</dt><dd>{namespace}</dd></div>
          <div><dt>Ready</dt><dd>{row.ready ? "Yes" : "No"}</dd></div>
          <div><dt>IP address</dt><dd>{row.ip || "—"}</dd></div>
          <div><dt>Node</dt><dd>{row.node || "—"}</dd></div>
          <div><dt>Created</dt><dd>{age(vm.metadata.creationTimestamp)} ago</dd></div>
          <div><dt>Guest OS</dt><dd>{os.prettyName || os.name || "—"}{os.kernelRelease ? ` (kernel ${os.kernelRelease})` : ""}</dd></div>
        </dl>
      </section>
      <section aria-labelledby="consoles"><h2 id="consoles">Consoles</h2>
        <Consoles namespace={namespace} name={name} running={running} perms={perms} /></section>
      <section aria-labelledby="conditions"><h2 id="conditions">Conditions</h2>
        <Conditions title="VirtualMachine" obj={vm} /><Conditions title="VirtualMachineInstance" obj={vmi} /></section>
      <section aria-labelledby="timeline"><h2 id="timeline">Startup timeline</h2><Timeline vmi={vmi} /></section>
      <section aria-labelledby="metrics"><h2 id="metrics">Metrics</h2>
        <Metrics namespace={namespace} name={name} prometheus={config.prometheus} /></section>
      <section aria-labelledby="events"><h2 id="events">Events</h2><Events namespace={namespace} name={name} /></section>
      <section aria-labelledby="spec"><h2 id="spec">Spec</h2>
        <pre class="yaml" tabIndex={0} aria-label="Spec as YAML">{stringify(vm.spec)}</pre></section>
    </article>
  );
}
