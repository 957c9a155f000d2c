// The VM list, live: VMs and their instances are watched, so status, IP and node change in place.
import { useEffect, useState } from "preact/hooks";
import { vmPath, vmiPath, watchCollection } from "./api.js";
import { Actions, usePermissions } from "./actions.jsx";
import { age, vmRow } from "./util.js";

function useWatched(path) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setItems(null);
    return watchCollection(path, setItems, setError);
  }, [path]);
  return [items, error];
}

function Row({ row, now }) {
  const perms = usePermissions(row.namespace);
  const href = `#/vms/${encodeURIComponent(row.namespace)}/${encodeURIComponent(row.name)}`;
  return (
    <tr data-vm={`${row.namespace}/${row.name}`}>
      <th scope="row" data-label="Name"><a href={href}>{row.name}</a></th>
      <td data-label="Namespace">{row.namespace}</td>
      <td data-label="Status"><span class={`status status-${row.status.toLowerCase()}`}>{row.status}</span></td>
      <td data-label="IP">{row.ip || "—"}</td>
      <td data-label="Node">{row.node || "—"}</td>
      <td data-label="Age">{age(row.created, now)}</td>
      <td data-label="Ready">{row.ready ? "Yes" : "No"}</td>
      <td data-label="Actions"><Actions row={row} perms={perms} compact /></td>
    </tr>
  );
}

export function VMList({ config }) {
  const [scope, setScope] = useState(""); // "" = all namespaces, as far as RBAC allows
  const [vms, vmError] = useWatched(vmPath(scope));
  const [vmis] = useWatched(vmiPath(scope));
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 5000);
    return () => clearInterval(timer);
  }, []);
  useEffect(() => {
    // someone who may not list VMs cluster-wide still gets their own namespace
    if (scope === "" && vmError && vmError.status === 403) setScope(config.namespace || "default");
  }, [vmError, scope]);

  const byKey = new Map();
  for (const vmi of (vmis && vmis.values()) || []) byKey.set(`${vmi.metadata.namespace}/${vmi.metadata.name}`, vmi);
  const rows = [...((vms && vms.values()) || [])]
    .map((vm) => vmRow(vm, byKey.get(`${vm.metadata.namespace}/${vm.metadata.name}`)))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));

  return (
    <section aria-labelledby="list-title">
      <div class="title-row">
        <h1 id="list-title">Virtual machines</h1>
        <label class="inline">
          Namespace{" "}
          <input type="text" value={scope} placeholder="all namespaces" size={16}
            onChange={(e) => setScope(e.currentTarget.value.trim())} aria-describedby="scope-help" />
        </label>
        <span id="scope-help" class="visually-hidden">Empty shows every namespace you may list</span>
      </div>
      {vmError && <p class="error" role="alert">Cannot list virtual machines: {vmError.message}</p>}
      {vms === null && !vmError && <p class="loading" role="status">Loading…</p>}
      {vms !== null && rows.length === 0 && (
        <p>No virtual machines {scope ? `in ${scope}` : ""}. <a href="#/create">Create one</a>.</p>
      )}
      {rows.length > 0 && (
        <table class="vms">
          <caption class="visually-hidden">Virtual machines, updated live</caption>
          <thead>
            <tr>
              <th scope="col">Name</th><th scope="col">Namespace</th><th scope="col">Status</th>
              <th scope="col">IP</th><th scope="col">Node</th><th scope="col">Age</th><th scope="col">Ready</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>{rows.map((row) => <Row key={row.key} row={row} now={now} />)}</tbody>
        </table>
      )}
    </section>
  );
}
