// The API over fetch: the bearer token (kept in this tab), JSON errors, Server-Sent Events.
export const API = "/api/v1";
export const $ = (sel, root = document) => root.querySelector(sel);

export const token = {
  get: () => sessionStorage.getItem("orchestrator-token"),
  set: (t) => sessionStorage.setItem("orchestrator-token", t),
  clear: () => sessionStorage.removeItem("orchestrator-token"),
};

export function askToken() {
  const dialog = $("#token-dialog");
  $("#token-input").value = "";
  dialog.showModal();
  return new Promise((resolve) => {
    const done = (ok) => {
      dialog.close();
      $("#token-form").onsubmit = null;
      $("#token-cancel").onclick = null;
      if (ok) token.set($("#token-input").value.trim());
      updateTokenButton();
      resolve(ok);
    };
    $("#token-form").onsubmit = (e) => { e.preventDefault(); done(true); };
    $("#token-cancel").onclick = () => done(false);
  });
}
export function updateTokenButton() { $("#token-button").textContent = token.get() ? "Token set ✓" : "Set token"; }

function headers(extra = {}) {
  const t = token.get();
  return t ? { ...extra, Authorization: "Bearer " + t } : extra;
}

export async function api(path, options = {}) {
  const res = await fetch(API + path, { ...options, headers: headers(options.headers) });
  if (res.status === 401) {
    token.clear();
    if (await askToken()) return api(path, options);
    throw new Error("a token is needed");
  }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error(body?.error?.message || res.statusText);
  return body;
}

export function toast(text) {
  const el = $("#toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 3500);
}

// Server-Sent Events over fetch (EventSource cannot send the Authorization header); resumes
// after the last id seen. Returns the function that stops following.
export function follow(path, onEvent) {
  let lastId = null, stopped = false, controller = null;
  async function connect() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch(API + path, { headers: headers(lastId ? { "Last-Event-ID": lastId } : {}), signal: controller.signal });
        if (!res.ok) throw new Error(res.statusText);
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = { type: "message", data: "" };
            for (const line of block.split("\n")) {
              const [field, ...rest] = line.split(":");
              const v = rest.join(":").replace(/^ /, "");
              if (field === "event") event.type = v;
              else if (field === "data") event.data += v;
              else if (field === "id") lastId = v;
            }
            if (event.data) onEvent(event.type, JSON.parse(event.data));
            if (event.type === "finished") { stopped = true; return; }
          }
        }
      } catch (err) {
        if (stopped) return;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  connect();
  return () => { stopped = true; controller?.abort(); };
}
