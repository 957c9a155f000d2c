// The web console's shell: configuration, sign-in (in the cluster), navigation and the pages.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "@xterm/xterm/css/xterm.css";
import "./style.css";
import { login, logout, uiConfig } from "./api.js";
import { VMList } from "./vmlist.jsx";
import { VMDetails } from "./details.jsx";
import { CreateVM } from "./create.jsx";

function useHash() {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const onChange = () => setHash(location.hash || "#/");
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return hash;
}

function route(hash) {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "vms" && parts.length === 3) return { page: "details", namespace: parts[1], name: parts[2] };
  if (parts[0] === "create") return { page: "create" };
  return { page: "list" };
}

function Login({ onDone }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(token);
      onDone();
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  }
  return (
    <main id="main" class="login">
      <h1>Sign in to the KubeVirt console</h1>
      <p>The console acts with your own token: you see and do exactly what RBAC allows you.</p>
      <form onSubmit={submit}>
        <label for="token">Bearer token</label>
        <textarea id="token" rows="4" required value={token} onInput={(e) => setToken(e.currentTarget.value)}
          aria-describedby="token-help" autocomplete="off" spellcheck={false} />
        <p id="token-help" class="help">For example the output of <code>kubectl create token NAME</code>.</p>
        {error && <p class="error" role="alert">{error}</p>}
        <button type="submit" class="primary" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
      </form>
    </main>
  );
}

function App() {
  const hash = useHash();
  const [config, setConfig] = useState(null);
  const [failure, setFailure] = useState(null);
  const load = () => uiConfig().then(setConfig).catch((err) => setFailure(err.message));
  useEffect(load, []);

  if (failure) return <main id="main"><p class="error" role="alert">The console server did not answer: {failure}</p></main>;
  if (!config) return <main id="main"><p class="loading">Loading…</p></main>;
  if (!config.authenticated) {
    if (config.mode === "cluster") return <Login onDone={load} />;
    return (
      <main id="main">
        <h1>Not signed in</h1>
        <p class="error" role="alert">Open the address that <code>virtctl ui</code> printed (it carries a one-time token).</p>
      </main>
    );
  }
  const r = route(hash);
  const current = (page) => (r.page === page ? "page" : undefined);
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">KubeVirt console</a>
        <nav aria-label="Main">
          <a href="#/" aria-current={current("list")}>Virtual machines</a>
          <a href="#/create" aria-current={current("create")}>Create VM</a>
        </nav>
        <span class="user" title="The API server sees requests as this user">
          {config.user ? `Signed in as ${config.user}` : "Your kubeconfig credentials"}
        </span>
        {config.mode === "cluster" && (
          <button type="button" class="link" onClick={() => logout().then(load)}>Sign out</button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {r.page === "list" && <VMList config={config} />}
        {r.page === "details" && <VMDetails namespace={r.namespace} name={r.name} config={config} />}
        {r.page === "create" && <CreateVM config={config} />}
      </main>
    </>
  );
}

const root = document.getElementById("app");
root.textContent = ""; // the static "Loading…" placeholder
render(<App />, root);
