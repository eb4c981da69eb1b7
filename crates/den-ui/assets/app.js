// den ui: the page. Plain JavaScript, no framework; everything it shows comes
// from den ui's JSON API, its server-sent events and the terminal websocket
// (docs/ui.md). xterm.js and its fit addon, the vendored classic scripts
// (window.Terminal, window.FitAddon), are loaded when the first terminal
// opens, so the list does not wait for them.

const $ = (sel, root = document) => root.querySelector(sel);

const state = {
  context: null, // the context the page shows
  events: null, // EventSource of /api/events
  workspaces: new Map(), // id → workspace, as last sent
  ides: [], // [{name,label}]
  defaultIde: null,
  terminals: [], // {n, id, tab, pane, term, ws, fit, exit}
  termCount: 0,
  log: null, // EventSource of the open log
  listShown: false,
};

// ---- small helpers ---------------------------------------------------------

/** An element with attributes and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function q(params) {
  return new URLSearchParams(params).toString();
}

class ApiError extends Error {
  constructor(message, exit) {
    super(message);
    this.exit = exit;
  }
}

async function answer(r) {
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { error: text.trim() || `${r.status} ${r.statusText}` };
  }
  if (!r.ok) throw new ApiError(data.error || `${r.status} ${r.statusText}`, data.exit);
  return data;
}

async function getJson(path) {
  return answer(await fetch(path, { credentials: "same-origin" }));
}

/** Every state-changing request carries X-Den: 1 (den ui refuses it otherwise). */
async function post(path, body) {
  const r = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Den": "1" },
    body: JSON.stringify(body),
  });
  return answer(r);
}

function showError(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

// ---- contexts, providers, IDEs ------------------------------------------------

/** The context named in the address (`/#work`), if any. */
function hashContext() {
  return decodeURIComponent(location.hash.slice(1)) || null;
}

/** Fills the switcher; the context shown is the address's if it exists, else the current one. */
async function loadContexts() {
  const { current, contexts } = await getJson("/api/contexts");
  const select = $("#context");
  select.replaceChildren(...contexts.map((c) => el("option", { value: c, text: c })));
  select.addEventListener("change", () => switchContext(select.value));
  const wanted = contexts.includes(hashContext()) ? hashContext() : current;
  select.value = wanted;
  return { wanted, current };
}

async function switchContext(context) {
  state.context = context;
  history.replaceState(null, "", `#${encodeURIComponent(context)}`);
  state.workspaces.clear();
  $("#workspaces tbody").replaceChildren();
  closeLog();
  watchWorkspaces();
  await loadProviders().catch((e) => showError($("#create-error"), e.message));
}

async function loadProviders() {
  const { default: def, providers } = await getJson(`/api/providers?${q({ context: state.context })}`);
  const options = [el("option", { value: "", text: `default (${def || "none"})` })];
  for (const p of providers) options.push(el("option", { value: p, text: p }));
  $("#f-provider").replaceChildren(...options);
}

function ideLabel(name) {
  const ide = state.ides.find((i) => i.name === name);
  return ide ? ide.label : name;
}

async function loadIdes() {
  const { default: def, ides } = await getJson("/api/ides");
  state.ides = ides;
  state.defaultIde = def;
  const options = [el("option", { value: "", text: `default (${def || "none"})` })];
  for (const i of ides) options.push(el("option", { value: i.name, text: i.label }));
  $("#f-ide").replaceChildren(...options);
  // Rows shown before the IDEs were known get their labels now.
  for (const tr of $("#workspaces tbody").rows) fillRow(tr, state.workspaces.get(tr.dataset.id));
}

// ---- the workspace list, live -------------------------------------------------

function setConn(kind, text) {
  const c = $("#conn");
  c.dataset.conn = kind;
  c.textContent = text;
}

function watchWorkspaces() {
  if (state.events) state.events.close();
  // Without a context the server follows the current one (and names it).
  const es = new EventSource(`/api/events${state.context ? `?${q({ context: state.context })}` : ""}`);
  state.events = es;
  es.addEventListener("open", () => setConn("live", "live"));
  es.addEventListener("error", () => {
    // CLOSED: refused (den ui ended, or another one runs with another token).
    if (es.readyState === EventSource.CLOSED) setConn("down", "disconnected: open the URL den ui prints");
    else setConn("down", "reconnecting…");
  });
  es.addEventListener("workspaces", (ev) => {
    const data = JSON.parse(ev.data);
    if (!state.context) state.context = data.context;
    if (data.context && data.context !== state.context) return;
    renderWorkspaces(data.workspaces || []);
  });
}

function renderWorkspaces(list) {
  const tbody = $("#workspaces tbody");
  const seen = new Set();
  list.forEach((w, i) => {
    seen.add(w.id);
    state.workspaces.set(w.id, w);
    let tr = tbody.querySelector(`tr[data-id="${CSS.escape(w.id)}"]`);
    if (!tr) tr = newRow(w);
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    fillRow(tr, w);
  });
  for (const tr of [...tbody.children]) {
    if (!seen.has(tr.dataset.id)) {
      state.workspaces.delete(tr.dataset.id);
      tr.remove();
    }
  }
  $("#empty").hidden = list.length > 0;
  if (!state.listShown) {
    state.listShown = true;
    performance.mark("den-list-visible"); // read by benches/ui.sh
  }
}

const COLUMNS = ["Workspace", "Status", "Source", "Provider", "Machine", "IDE", "Age", "Ports", "Actions"];
const ACTIONS = [
  ["up", "Up"],
  ["stop", "Stop"],
  ["delete", "Delete"],
  ["open", "Open in IDE"],
  ["terminal", "Terminal"],
  ["log", "Log"],
];

function newRow(w) {
  const tr = el("tr", { "data-id": w.id });
  for (const name of COLUMNS) tr.append(el("td", { "data-label": name, "data-col": name.toLowerCase() }));
  tr.cells[0].append(el("span", { class: "ws-id", text: w.id }));
  const actions = el("div", { class: "actions", role: "group", "aria-label": `Actions for ${w.id}` });
  for (const [action, label] of ACTIONS) {
    actions.append(
      el("button", {
        type: "button",
        "data-action": action,
        class: action === "delete" ? "danger" : null,
        "aria-label": `${label} ${w.id}`,
        text: label,
        onclick: () => act(action, w.id),
      })
    );
  }
  tr.cells[8].append(actions);
  return tr;
}

/** Sets a cell's content only when it changed, so focus and selection stay. */
function setCell(td, key, build) {
  if (td.dataset.key === key) return;
  td.dataset.key = key;
  td.replaceChildren(...[build()].flat());
}

function fillRow(tr, w) {
  const c = tr.cells;
  setCell(c[1], `${w.status}|${w.problem || ""}`, () => statusBadge(w));
  setCell(c[2], JSON.stringify(w.source), () => sourceCell(w.source));
  setCell(c[3], w.provider || "", () => w.provider || "—");
  setCell(c[4], w.machine || "", () => w.machine || "—");
  setCell(c[5], `${w.ide || ""}|${state.ides.length}`, () => (w.ide ? ideLabel(w.ide) : "—"));
  setCell(c[6], `${w.age}|${w.created}`, () => el("time", { datetime: w.created, title: w.created, text: w.age }));
  setCell(c[7], JSON.stringify(w.ports || []), () => portsCell(w.ports || []));
  const busy = w.status === "Busy";
  for (const b of tr.querySelectorAll("button[data-action]")) {
    const a = b.dataset.action;
    b.disabled = busy && a !== "log" && a !== "terminal";
    if (a === "up") b.classList.toggle("quiet", w.status === "Running");
    if (a === "stop") b.classList.toggle("quiet", w.status !== "Running");
  }
}

function statusBadge(w) {
  const badge = el("span", { class: `badge s-${w.status.toLowerCase()}`, "data-status": w.status, text: w.status });
  if (!w.problem) return badge;
  badge.title = w.problem;
  return [badge, el("span", { class: "problem", text: w.problem })];
}

function sourceCell(src) {
  if (!src) return "—";
  const kind = el("span", { class: `kind k-${src.kind}`, text: src.kind });
  const text = el("span", { class: "src-text", title: src.text, text: src.text });
  const ref = src.ref ? el("span", { class: "ref", title: "git ref", text: `@${src.ref}` }) : null;
  return el("span", { class: "source" }, kind, " ", text, ref ? " " : null, ref);
}

function portsCell(ports) {
  if (!ports.length) return "—";
  return el(
    "span",
    { class: "ports" },
    ...ports.map((p) =>
      el("a", {
        href: p.url,
        target: "_blank",
        rel: "noopener noreferrer",
        "data-port": p.port,
        title: `${p.local} → container port ${p.port}`,
        text: p.label ? `${p.label} (${p.port})` : String(p.port),
      })
    )
  );
}

// ---- row actions ----------------------------------------------------------------

function act(action, id) {
  const ctx = state.context;
  const base = `/api/workspaces/${encodeURIComponent(id)}`;
  switch (action) {
    case "up":
      return runOp(`up ${id}`, () => post(`${base}/up`, { context: ctx }));
    case "stop":
      return runOp(`stop ${id}`, () => post(`${base}/stop`, { context: ctx }));
    case "delete":
      return confirmDelete(id);
    case "open":
      return chooseIde(id);
    case "terminal":
      return openTerminal(id);
    case "log":
      return openLog(id);
  }
}

function ask(dialog, onOk) {
  const opener = document.activeElement;
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    () => {
      if (dialog.returnValue === "ok") onOk();
      if (opener && document.contains(opener)) opener.focus();
    },
    { once: true }
  );
  dialog.showModal();
}

function confirmDelete(id) {
  $("#confirm-text").textContent =
    `Delete workspace ${id}? Its container and everything in it that is not in its source folder go away.`;
  $("#confirm-force").checked = false;
  const dialog = $("#confirm-dialog");
  ask(dialog, () => {
    const force = $("#confirm-force").checked;
    runOp(`delete ${id}`, () =>
      post(`/api/workspaces/${encodeURIComponent(id)}/delete`, { context: state.context, force })
    );
  });
}

function chooseIde(id) {
  const w = state.workspaces.get(id);
  const select = $("#open-ide");
  select.replaceChildren(...state.ides.map((i) => el("option", { value: i.name, text: i.label })));
  select.value = (w && w.ide) || state.defaultIde || (state.ides[0] && state.ides[0].name) || "";
  $("#open-title").textContent = `Open ${id} in an IDE`;
  ask($("#open-dialog"), () => {
    const ide = select.value || null;
    runOp(`open ${id}`, () => post(`/api/workspaces/${encodeURIComponent(id)}/open`, { context: state.context, ide }));
  });
}

// ---- operations ------------------------------------------------------------------

/** Starts an operation (a POST answering {op}) and streams its progress. */
async function runOp(title, start) {
  const entry = opEntry(title);
  try {
    const { op } = await start();
    entry.li.dataset.op = op;
    followOp(op, entry);
  } catch (e) {
    finishOp(entry, { ok: false, exit: e.exit, error: e.message });
  }
  return entry;
}

function opEntry(title) {
  const phase = el("span", { class: "phase", text: "starting…" });
  const lines = el("pre", { class: "lines", tabindex: "0", "aria-label": `Output of ${title}` });
  const result = el("p", { class: "result", role: "status" });
  const li = el(
    "li",
    { "data-state": "running" },
    el("div", { class: "op-head" }, el("strong", { text: title }), " ", phase),
    lines,
    result
  );
  $("#ops").prepend(li);
  $("#ops-empty").hidden = true;
  return { li, phase, lines, result };
}

function followOp(op, entry) {
  const es = new EventSource(`/api/ops/${encodeURIComponent(op)}/events`);
  es.addEventListener("phase", (ev) => {
    const { name, detail } = JSON.parse(ev.data);
    entry.phase.textContent = detail ? `${name}: ${detail}` : name;
    appendLine(entry.lines, `▸ ${entry.phase.textContent}`);
  });
  es.addEventListener("line", (ev) => appendLine(entry.lines, JSON.parse(ev.data).text));
  es.addEventListener("done", (ev) => {
    es.close(); // the stream ends here; EventSource would otherwise reconnect
    finishOp(entry, JSON.parse(ev.data));
  });
  es.addEventListener("error", () => {
    if (entry.li.dataset.state === "running" && es.readyState === EventSource.CLOSED) {
      finishOp(entry, { ok: false, error: "lost the connection to den ui" });
    }
  });
}

function appendLine(pre, text) {
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(`${text}\n`);
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

function finishOp(entry, { ok, exit, error }) {
  entry.li.dataset.state = ok ? "ok" : "failed";
  if (exit !== undefined && exit !== null) entry.li.dataset.exit = exit;
  entry.phase.textContent = ok ? "done" : "failed";
  entry.result.textContent = ok ? "Done." : `${error || "failed"}${exit ? ` (exit ${exit})` : ""}`;
  entry.result.className = ok ? "result ok" : "result error";
}

// ---- the create form --------------------------------------------------------------

function lines(text) {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
}

function createBody(form) {
  const f = new FormData(form);
  const s = (name) => (f.get(name) || "").trim() || null;
  return {
    context: state.context,
    source: s("source"),
    provider: s("provider"),
    ide: s("ide"),
    id: s("id"),
    options: {
      git_branch: s("git_branch"),
      devcontainer_path: s("devcontainer_path"),
      recreate: f.get("recreate") === "on",
      provider_options: lines(f.get("provider_options") || ""),
      workspace_env: lines(f.get("workspace_env") || ""),
      dotfiles: s("dotfiles"),
    },
  };
}

async function submitCreate(ev) {
  ev.preventDefault();
  const form = ev.target;
  const body = createBody(form);
  showError($("#create-error"), "");
  if (!body.source) return showError($("#create-error"), "Give a folder path or a git URL.");
  const entry = await runOp(`up ${body.id || body.source}`, () => post("/api/workspaces", body));
  if (entry.li.dataset.state === "failed") showError($("#create-error"), entry.result.textContent);
}

// ---- terminals ---------------------------------------------------------------------

/**
 * xterm.js writes its sizes and theme into <style> elements, which the
 * page's Content-Security-Policy (style-src 'self') refuses to apply. Each
 * such element's text is mirrored into a constructed stylesheet, which the
 * policy allows, so the terminal gets its font, colours and dimensions
 * without loosening the policy.
 */
const mirrored = new Map(); // <style> element → CSSStyleSheet

function mirrorStyles(records) {
  let changed = false;
  for (const r of records) {
    const style = r.target.nodeName === "STYLE" ? r.target : r.target.parentNode;
    if (style && style.nodeName === "STYLE") changed = mirrorOne(style) || changed;
    for (const n of r.addedNodes) if (n.nodeName === "STYLE") changed = mirrorOne(n) || changed;
  }
  for (const [style, sheet] of mirrored) {
    if (!style.isConnected) {
      mirrored.delete(style);
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter((x) => x !== sheet);
    }
  }
  return changed;
}

function mirrorOne(style) {
  let sheet = mirrored.get(style);
  if (!sheet) {
    sheet = new CSSStyleSheet();
    mirrored.set(style, sheet);
    document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  }
  sheet.replaceSync(style.textContent || "");
  return true;
}

new MutationObserver(mirrorStyles).observe(document.documentElement, {
  childList: true,
  subtree: true,
  characterData: true,
});

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

let xterm = null; // the promise of xterm.js and its fit addon, loaded once

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = el("script", { src });
    s.addEventListener("load", resolve);
    s.addEventListener("error", () => reject(new Error(`could not load ${src}`)));
    document.head.append(s);
  });
}

function loadXterm() {
  if (!xterm) xterm = loadScript("/assets/xterm.js").then(() => loadScript("/assets/addon-fit.js"));
  return xterm;
}

async function openTerminal(id) {
  try {
    await loadXterm();
  } catch (e) {
    xterm = null;
    return showError($("#list-error"), e.message);
  }
  const n = ++state.termCount;
  const t = { n, id, exit: null };
  t.tab = termTab(t);
  t.pane = el("div", { class: "term-pane", id: `term-pane-${n}`, role: "tabpanel", "data-id": id, "data-term": n });
  t.status = el("p", { class: "term-status", role: "status" });
  t.screen = el("div", { class: "term-screen" });
  t.pane.append(t.screen, t.status);
  $("#term-tabs").append(t.tab);
  $("#term-panes").append(t.pane);
  $("#terminals-section").hidden = false;
  state.terminals.push(t);
  selectTerminal(t);
  startTerminal(t);
  t.pane.scrollIntoView({ block: "nearest" });
  t.term.focus();
}

function termTab(t) {
  const label = el("button", {
    type: "button",
    role: "tab",
    class: "term-label",
    "aria-controls": `term-pane-${t.n}`,
    text: `${t.id} #${t.n}`,
    onclick: () => selectTerminal(t),
    onkeydown: (ev) => tabKeys(ev, t),
  });
  const close = el("button", {
    type: "button",
    class: "term-close",
    "aria-label": `Close terminal ${t.id} #${t.n}`,
    text: "×",
    onclick: () => closeTerminal(t),
  });
  return el("span", { class: "term-tab", "data-id": t.id, "data-term": t.n }, label, close);
}

/** Arrow keys move between terminal tabs, as in any tab list. */
function tabKeys(ev, t) {
  const i = state.terminals.indexOf(t);
  const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
  if (!step || state.terminals.length < 2) return;
  const next = state.terminals[(i + step + state.terminals.length) % state.terminals.length];
  selectTerminal(next);
  next.tab.querySelector(".term-label").focus();
  ev.preventDefault();
}

function selectTerminal(t) {
  for (const o of state.terminals) {
    const on = o === t;
    o.pane.hidden = !on;
    o.tab.classList.toggle("active", on);
    const label = o.tab.querySelector(".term-label");
    label.setAttribute("aria-selected", String(on));
    label.tabIndex = on ? 0 : -1;
  }
  if (t.fit) requestAnimationFrame(() => fitTerminal(t));
}

function startTerminal(t) {
  t.term = new window.Terminal({
    cursorBlink: true,
    fontFamily: '"DejaVu Sans Mono", "Cascadia Mono", Menlo, Consolas, monospace',
    fontSize: 14,
    scrollback: 5000,
    theme: { background: "#0f1419", foreground: "#e6e1cf" },
  });
  t.fit = new window.FitAddon.FitAddon();
  t.term.loadAddon(t.fit);
  t.term.open(t.screen);
  t.fit.fit();
  const { cols, rows } = t.term;
  const path = `/api/workspaces/${encodeURIComponent(t.id)}/terminal?${q({ context: state.context, cols, rows })}`;
  const ws = new WebSocket(wsUrl(path));
  ws.binaryType = "arraybuffer";
  t.ws = ws;
  const enc = new TextEncoder();
  t.term.onData((d) => sendBytes(t, enc.encode(d)));
  t.term.onBinary((d) => sendBytes(t, Uint8Array.from(d, (c) => c.charCodeAt(0) & 255)));
  t.term.onResize(({ cols, rows }) => {
    showSize(t);
    sendText(t, { resize: [cols, rows] });
  });
  showSize(t);
  ws.addEventListener("open", () => (t.status.textContent = ""));
  ws.addEventListener("message", (ev) => termMessage(t, ev.data));
  ws.addEventListener("close", () => termClosed(t));
  t.resizer = new ResizeObserver(() => fitTerminal(t));
  t.resizer.observe(t.screen);
  t.status.textContent = "connecting…";
}

/** The terminal's size, on its pane (data-cols, data-rows) and its label's title. */
function showSize(t) {
  t.pane.dataset.cols = t.term.cols;
  t.pane.dataset.rows = t.term.rows;
  t.tab.querySelector(".term-label").title = `${t.term.cols}×${t.term.rows}`;
}

function sendBytes(t, bytes) {
  if (t.ws && t.ws.readyState === WebSocket.OPEN) t.ws.send(bytes);
}

function sendText(t, obj) {
  if (t.ws && t.ws.readyState === WebSocket.OPEN) t.ws.send(JSON.stringify(obj));
}

function fitTerminal(t) {
  if (!t.pane.hidden && t.screen.clientWidth > 0) t.fit.fit();
}

function termMessage(t, data) {
  if (typeof data !== "string") return t.term.write(new Uint8Array(data));
  const msg = JSON.parse(data);
  if ("exit" in msg) {
    t.exit = msg.exit;
    t.tab.dataset.exit = msg.exit;
    t.pane.dataset.exit = msg.exit;
    t.status.textContent = `The shell ended with exit code ${msg.exit}.`;
    t.status.className = msg.exit === 0 ? "term-status ok" : "term-status error";
    t.term.write(`\r\n\x1b[2m[exit ${msg.exit}]\x1b[0m\r\n`);
  } else if ("error" in msg) {
    t.tab.dataset.error = "";
    t.status.textContent = msg.error;
    t.status.className = "term-status error";
  }
}

function termClosed(t) {
  if (t.exit === null && !("error" in t.tab.dataset)) {
    t.status.textContent = "The connection to den ui closed.";
    t.status.className = "term-status error";
  }
  t.tab.classList.add("ended");
}

function closeTerminal(t) {
  if (t.ws) t.ws.close();
  if (t.resizer) t.resizer.disconnect();
  t.term.dispose();
  t.tab.remove();
  t.pane.remove();
  const i = state.terminals.indexOf(t);
  state.terminals.splice(i, 1);
  const next = state.terminals[Math.min(i, state.terminals.length - 1)];
  if (next) {
    selectTerminal(next);
    next.tab.querySelector(".term-label").focus();
  } else {
    $("#terminals-section").hidden = true;
  }
}

// ---- the agent log ------------------------------------------------------------------

function openLog(id) {
  closeLog();
  const pre = $("#log");
  pre.replaceChildren();
  pre.dataset.id = id;
  $("#log-title").textContent = `Agent log: ${id}`;
  $("#log-section").hidden = false;
  const es = new EventSource(`/api/workspaces/${encodeURIComponent(id)}/log?${q({ context: state.context })}`);
  state.log = es;
  es.addEventListener("line", (ev) => appendLine(pre, JSON.parse(ev.data).text));
  es.addEventListener("error", () => {
    if (es.readyState === EventSource.CLOSED) appendLine(pre, "(the log stream ended)");
  });
  pre.scrollIntoView({ block: "nearest" });
  pre.focus();
}

function closeLog() {
  if (state.log) state.log.close();
  state.log = null;
  $("#log-section").hidden = true;
}

// ---- start ---------------------------------------------------------------------------

window.addEventListener("resize", () => state.terminals.forEach(fitTerminal));

async function main() {
  $("#create-form").addEventListener("submit", submitCreate);
  $("#log-close").addEventListener("click", closeLog);
  // The list's stream starts at once (the address's context, else the
  // current one); the contexts, IDEs and providers come meanwhile.
  state.context = hashContext();
  watchWorkspaces();
  const failed = (e) => showError($("#list-error"), `den ui did not answer: ${e.message}`);
  const ides = loadIdes().catch(failed);
  const { wanted, current } = (await loadContexts().catch(failed)) || {};
  const following = state.context || current; // what the stream started with
  if (wanted && wanted !== following) return Promise.all([switchContext(wanted), ides]);
  state.context = state.context || wanted;
  await loadProviders().catch((e) => showError($("#create-error"), e.message));
  await ides;
}

main();
