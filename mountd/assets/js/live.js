// The event stream (GET /v1/events): one EventSource for the page, fanned out to the views.
// A view subscribes with a callback that gets each Event, or null when it must re-read its
// state (the stream (re)connected or this client lagged).

const subscribers = new Set();
let source = null;

function indicator(text, cls) {
  const el = document.getElementById("live");
  el.textContent = text;
  el.className = `live ${cls}`;
}

/** Opens the stream once. */
export function connect() {
  if (source) return;
  source = new EventSource("/v1/events", { withCredentials: true });
  source.onopen = () => {
    indicator("live", "on");
    for (const s of subscribers) s(null);
  };
  source.onerror = () => {
    indicator("reconnecting…", "off");
    window.dispatchEvent(new CustomEvent("wsfs-stream-error"));
  };
  source.onmessage = (m) => {
    let ev;
    try {
      ev = JSON.parse(m.data);
    } catch {
      return;
    }
    for (const s of subscribers) s(ev.event === "lagged" ? null : ev);
  };
}

/** Closes the stream (logout). */
export function disconnect() {
  if (source) source.close();
  source = null;
  indicator("", "");
}

/** Calls `fn` per event; returns the unsubscribe function. */
export function subscribe(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}
