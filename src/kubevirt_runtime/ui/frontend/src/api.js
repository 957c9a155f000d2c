// The Kubernetes API as the console server proxies it under /k8s, with the user's own credentials.
// Every failure becomes an ApiError whose message a person can read (never raw JSON).

export const SUBRESOURCES = "/apis/subresources.kubevirt.io/v1";
export const KUBEVIRT = "/apis/kubevirt.io/v1";
const WRITE_HEADER = "X-KubeVirt-UI";

export class ApiError extends Error {
  constructor(status, message, reason) {
    super(message);
    this.status = status;
    this.reason = reason || "";
  }
}

const STATUS_TEXT = {
  400: "The request was not valid",
  401: "You are not signed in (or your credentials expired)",
  403: "You are not allowed to do this",
  404: "Not found",
  409: "Conflict",
  422: "The object is not valid",
  429: "Too many requests; try again shortly",
  500: "The server failed",
  502: "The API server could not be reached",
  503: "The service is not available right now",
  504: "The server took too long to answer",
};

// A Kubernetes Status (or anything else) -> one readable sentence.
export function describeError(status, data, text) {
  if (data && typeof data === "object") {
    if (data.message) {
      const causes = ((data.details || {}).causes || [])
        .map((c) => (c.field ? `${c.field}: ${c.message}` : c.message))
        .filter((m) => m && !data.message.includes(m));
      return causes.length ? `${data.message} (${causes.join("; ")})` : data.message;
    }
  }
  const base = STATUS_TEXT[status] || `The request failed (HTTP ${status})`;
  const plain = (text || "").trim();
  if (plain && !plain.startsWith("{") && plain.length < 300) return `${base}: ${plain}`;
  return base;
}

export async function request(method, path, body, contentType = "application/json") {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers[WRITE_HEADER] = "1";
  if (body !== undefined) headers["Content-Type"] = contentType;
  let resp;
  try {
    resp = await fetch(`/k8s${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (err) {
    throw new ApiError(0, `Cannot reach the console server (${err.message}). Is virtctl ui still running?`);
  }
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) throw new ApiError(resp.status, describeError(resp.status, data, text), data && data.reason);
  return data;
}

export const get = (path) => request("GET", path);
export const put = (path, body) => request("PUT", path, body);
export const post = (path, body) => request("POST", path, body);
export const del = (path) => request("DELETE", path);

export async function uiConfig() {
  const resp = await fetch("/ui/config", { credentials: "same-origin" });
  return resp.json();
}

export async function login(token) {
  const resp = await fetch("/ui/login", {
    method: "POST",
    headers: { "Content-Type": "application/json", [WRITE_HEADER]: "1" },
    body: JSON.stringify({ token }),
    credentials: "same-origin",
  });
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, describeError(resp.status, data, ""));
  return data;
}

export async function logout() {
  await fetch("/ui/logout", { method: "POST", headers: { [WRITE_HEADER]: "1" }, credentials: "same-origin" });
}

export function vmPath(ns, name = "") {
  const base = ns ? `${KUBEVIRT}/namespaces/${ns}/virtualmachines` : `${KUBEVIRT}/virtualmachines`;
  return name ? `${base}/${name}` : base;
}

export function vmiPath(ns, name = "") {
  const base = ns ? `${KUBEVIRT}/namespaces/${ns}/virtualmachineinstances` : `${KUBEVIRT}/virtualmachineinstances`;
  return name ? `${base}/${name}` : base;
}

export function streamURL(ns, name, sub, query = "") {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const q = query ? `?${query}` : "";
  return `${scheme}://${location.host}/k8s${SUBRESOURCES}/namespaces/${ns}/virtualmachineinstances/${name}/${sub}${q}`;
}

// Can the user do `verb` on group/resource[/subresource] in ns? (SelfSubjectAccessReview)
export async function can(verb, group, resource, ns, subresource = "") {
  const review = {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SelfSubjectAccessReview",
    spec: { resourceAttributes: { namespace: ns, verb, group, resource, subresource } },
  };
  try {
    const answer = await post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review);
    return Boolean(answer && answer.status && answer.status.allowed);
  } catch {
    return false;
  }
}

// List, then watch from the list's resourceVersion; calls onChange(Map uid->object) after every change.
// Relists when the watch ends or is too old. Returns stop().
export function watchCollection(path, onChange, onError) {
  let stopped = false;
  let controller = null;
  const items = new Map();

  async function run() {
    while (!stopped) {
      let rv;
      try {
        const list = await get(path);
        items.clear();
        for (const obj of list.items || []) items.set(obj.metadata.uid, obj);
        rv = list.metadata.resourceVersion;
        onChange(new Map(items));
        onError(null);
      } catch (err) {
        onError(err);
        await sleep(err.status === 403 || err.status === 401 ? 15000 : 3000);
        continue;
      }
      try {
        await follow(rv);
      } catch (err) {
        if (stopped) return;
        if (err.name !== "AbortError") await sleep(1000);
      }
    }
  }

  async function follow(rv) {
    controller = new AbortController();
    const sep = path.includes("?") ? "&" : "?";
    const resp = await fetch(`/k8s${path}${sep}watch=1&allowWatchBookmarks=true&resourceVersion=${rv}`, {
      signal: controller.signal,
      credentials: "same-origin",
    });
    if (!resp.ok) throw new ApiError(resp.status, "watch failed");
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        const event = JSON.parse(line);
        if (event.type === "ERROR") return; // e.g. 410 Gone: relist
        if (event.type === "BOOKMARK") continue;
        const obj = event.object;
        if (event.type === "DELETED") items.delete(obj.metadata.uid);
        else items.set(obj.metadata.uid, obj);
        onChange(new Map(items));
      }
    }
  }

  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
