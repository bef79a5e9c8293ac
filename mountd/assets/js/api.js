// The control API (docs/api.md) as the page uses it: same-origin fetch, so the session cookie
// of /v1/login (or nothing, through the local socket) authenticates every call.

/** A non-2xx answer: `code` and `message` are the daemon's ApiError. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || "internal";
  }
}

const ws = (name) => `/v1/workspaces/${encodeURIComponent(name)}`;

async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (!r.ok) {
    const err = await r.json().catch(() => ({ code: "internal", message: `${r.status} ${r.statusText}` }));
    const e = new ApiError(r.status, err);
    if (r.status === 401 && path !== "/v1/login") window.dispatchEvent(new CustomEvent("wsfs-unauthorized"));
    throw e;
  }
  return r;
}

const json = async (method, path, body) => {
  const r = await call(method, path, body);
  return r.status === 204 ? null : r.json();
};

export const api = {
  daemon: () => json("GET", "/v1/daemon"),
  login: (token) => json("POST", "/v1/login", { token }),
  logout: () => json("POST", "/v1/logout"),
  workspaces: () => json("GET", "/v1/workspaces"),
  status: (name, show = "review") => json("GET", `${ws(name)}/status?show=${show}`),
  diff: (name, paths, show = "all") => json("POST", `${ws(name)}/diff?show=${show}`, { paths }),
  discard: (name, paths) => json("POST", `${ws(name)}/discard`, { paths }),
  log: (name) => json("GET", `${ws(name)}/log`),
  terminalUrl: (name, cols, rows) => {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    return `${proto}://${location.host}${ws(name)}/terminal?cols=${cols}&rows=${rows}`;
  },
  /** Commits; resolves to the CommitReport (the NDJSON stream's `done` event). */
  async commit(name, req) {
    const r = await call("POST", `${ws(name)}/commit`, req);
    const lines = (await r.text()).split("\n").filter((l) => l.trim());
    for (const line of lines) {
      const ev = JSON.parse(line);
      if (ev.event === "done") return ev.report;
      if (ev.event === "error") throw new ApiError(500, ev.error);
    }
    throw new ApiError(500, { message: "the commit stream ended without a result; see `wsfs log`" });
  },
};
