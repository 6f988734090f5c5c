// The agent-guidance canvas: start operations and watch each as a card.
import { h, clear, fmtTime, indicator, toast } from "./dom";
import { api, isLive, listOperations, OperationsClient, type Json, type Msg, type OperationRecord } from "./tether";
import { unauthorized, type View } from "./session";

/** sessionStorage key of the cards: reloading the page resumes each from
 * its last seq. */
const STORE_KEY = "tether.operations";
/** sessionStorage key of the ids of dismissed cards, so that the list from
 * the server does not bring them back. */
const DISMISSED_KEY = "tether.operations.dismissed";
const MAX_DISMISSED = 500;
const MAX_LOG = 300;
/** Cards kept; beyond, the oldest finished ones are dropped. */
const MAX_CARDS = 50;
/** How often the list of operations is fetched again, for the operations
 * started elsewhere (the API, another tab, a program). */
const POLL_MS = 5000;

interface CardState {
  id: string;
  agent: string;
  type: string;
  owner?: string;
  startedAt?: string;
  status: "running" | "waiting_input" | "completed" | "failed" | "cancelled";
  progress: number | null;
  step: string;
  message: string;
  logs: { t: string; m: string }[];
  result?: Json;
  failure?: { code: string; message: string };
  seq: number;
  /** What the agent's AG-UI events built (docs/ag-ui.md). */
  agui?: AguiView;
  /** Its input requests, open ones first answered last. */
  inputs?: InputReq[];
}

interface AguiView {
  /** Text messages and tool calls, in the order they started. */
  items: ({ kind: "text"; id: string; role: string; text: string; open: boolean } | { kind: "tool"; id: string; name: string; args: string; result?: string; open: boolean })[];
  state?: Json;
  steps: string[];
}

interface InputReq {
  id: string;
  prompt: string;
  schema?: Json;
  answered?: { value: Json; status: string; by: string };
}

/** Bounds of what a card keeps of an AG-UI run. */
const MAX_ITEMS = 100;
const MAX_TEXT = 64 * 1024;

/** Applies one AG-UI event to a card's view. */
function applyAgui(v: AguiView, ev: { [k: string]: any }) {
  const item = (kind: "text" | "tool", id: string) => v.items.find((i) => i.kind === kind && i.id === id);
  const clip = (t: string) => (t.length > MAX_TEXT ? "…" + t.slice(t.length - MAX_TEXT) : t);
  switch (ev.type) {
    case "TEXT_MESSAGE_START":
      v.items.push({ kind: "text", id: ev.messageId, role: ev.role ?? "assistant", text: "", open: true });
      break;
    case "TEXT_MESSAGE_CONTENT": {
      const i = item("text", ev.messageId);
      if (i && i.kind === "text") i.text = clip(i.text + ev.delta);
      break;
    }
    case "TEXT_MESSAGE_END": {
      const i = item("text", ev.messageId);
      if (i) i.open = false;
      break;
    }
    case "TOOL_CALL_START":
      v.items.push({ kind: "tool", id: ev.toolCallId, name: ev.toolCallName, args: "", open: true });
      break;
    case "TOOL_CALL_ARGS": {
      const i = item("tool", ev.toolCallId);
      if (i && i.kind === "tool") i.args = clip(i.args + ev.delta);
      break;
    }
    case "TOOL_CALL_END": {
      const i = item("tool", ev.toolCallId);
      if (i) i.open = false;
      break;
    }
    case "TOOL_CALL_RESULT": {
      const i = item("tool", ev.toolCallId);
      if (i && i.kind === "tool") i.result = typeof ev.content === "string" ? ev.content : JSON.stringify(ev.content);
      break;
    }
    case "STEP_STARTED":
      v.steps.push(ev.stepName);
      break;
    case "STEP_FINISHED":
      v.steps = v.steps.filter((n) => n !== ev.stepName);
      break;
    case "STATE_SNAPSHOT":
      v.state = ev.snapshot;
      break;
    case "STATE_DELTA":
      // Tether applied it before storing it, so it applies here too.
      try {
        v.state = applyPatch(v.state ?? {}, ev.delta);
      } catch {
        /* a state the card missed the start of: the next snapshot fixes it */
      }
      break;
  }
  if (v.items.length > MAX_ITEMS) v.items.splice(0, v.items.length - MAX_ITEMS);
}

/** RFC 6902 JSON Patch, enough for the console's state view (Tether has
 * checked every delta before storing it). */
function applyPatch(doc: Json, ops: { op: string; path: string; from?: string; value?: Json }[]): Json {
  const parse = (p: string) => (p === "" ? [] : p.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~")));
  const get = (d: any, toks: string[]) => toks.reduce((c, t) => (c == null ? undefined : c[t]), d);
  let root: any = structuredClone(doc);
  const put = (toks: string[], value: any, insert: boolean) => {
    if (!toks.length) return void (root = value);
    const parent = get(root, toks.slice(0, -1));
    const last = toks[toks.length - 1];
    if (Array.isArray(parent)) {
      const i = last === "-" ? parent.length : Number(last);
      if (insert) parent.splice(i, 0, value);
      else parent[i] = value;
    } else parent[last] = value;
  };
  const del = (toks: string[]) => {
    const parent = get(root, toks.slice(0, -1));
    const last = toks[toks.length - 1];
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  };
  for (const o of ops) {
    const toks = parse(o.path);
    switch (o.op) {
      case "add":
        put(toks, structuredClone(o.value), true);
        break;
      case "replace":
        put(toks, structuredClone(o.value), false);
        break;
      case "remove":
        del(toks);
        break;
      case "move": {
        const from = parse(o.from!);
        const v = get(root, from);
        del(from);
        put(toks, v, true);
        break;
      }
      case "copy":
        put(toks, structuredClone(get(root, parse(o.from!))), true);
        break;
    }
  }
  return root;
}

/** A collapsible tree of a JSON value. */
function tree(v: Json, name: string, open: boolean): HTMLElement {
  if (v === null || typeof v !== "object") return h("div.tree-leaf", {}, h("span.muted", {}, name ? name + ": " : ""), JSON.stringify(v));
  const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
  const d = h("details.tree", {}, h("summary", {}, `${name}${Array.isArray(v) ? ` [${v.length}]` : ` {${entries.length}}`}`));
  d.open = open;
  for (const [k, x] of entries) d.appendChild(tree(x, k, false));
  return d;
}

function load(key: string): unknown[] {
  try {
    const v = JSON.parse(sessionStorage.getItem(key) ?? "[]");
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

/** A card for an operation known from its record only. A running one is
 * then replayed from its start (seq 0), which fills in its log; of an
 * ended one the record is all there is to show. */
function fromRecord(r: OperationRecord, me: string): CardState {
  return {
    id: r.operation_id,
    agent: r.agent_id,
    type: r.operation_type,
    owner: r.owner === me ? undefined : r.owner, // an admin sees everyone's
    startedAt: r.started_at,
    status: r.status,
    progress: isLive(r.status) ? null : (r.progress ?? null),
    step: isLive(r.status) ? "" : (r.step ?? ""),
    message: isLive(r.status) ? "" : (r.message ?? ""),
    logs: [],
    result: r.result,
    failure: r.failure,
    seq: isLive(r.status) ? 0 : r.last_seq,
  };
}

export const operationsView: View = (root, s) => {
  const cards = new Map<string, Card>();
  const states = load(STORE_KEY) as CardState[];
  const dismissed = load(DISMISSED_KEY) as string[];
  const save = () => sessionStorage.setItem(STORE_KEY, JSON.stringify(states));
  const ind = indicator("ops-indicator");
  const grid = h("div.cards", { testid: "op-cards", "aria-busy": "true" });
  // Until the first list arrives, no cards does not mean no operations.
  let listed = false;
  const empty = h("p.muted.empty", { testid: "ops-empty" }, "Loading your operations…");
  const failure = h("p.form-error", { testid: "ops-error", role: "alert", hidden: true });

  const client = new OperationsClient(s.token, {
    event: (m) => onEvent(m),
    error: (m) => {
      const c = cards.get(m.operation_id);
      if (c && (m.code === "not_found" || m.code === "forbidden")) {
        c.st.status = "failed";
        c.st.failure = { code: m.code, message: m.message };
        c.render();
        save();
      } else toast(`${m.code}: ${m.message}`, "error");
    },
    position: () => save(),
    state: (st, info) => {
      if (st === "reconnecting" && info.retryIn !== undefined)
        ind.set("reconnecting", `reconnecting in ${Math.ceil(info.retryIn / 1000)}s`);
      else if (st === "open") ind.set("open", "connected");
      else if (st === "closed" && info.code === 4001) window.dispatchEvent(new CustomEvent("tether:unauthorized"));
      else ind.set(st);
    },
  });

  function addCard(st: CardState, top: boolean) {
    const c: Card = new Card(st, {
      answer: async (requestId: string, value: Json) => {
        await api(s.token, "POST", `/api/operations/${encodeURIComponent(st.id)}/input`, { request_id: requestId, value });
      },
      cancel: async () => {
        try {
          await client.cancel(st.id);
        } catch (e) {
          toast((e as Error).message, "error");
        }
      },
      dismiss: () => {
        client.untrack(st.id);
        c.el.remove();
        cards.delete(st.id);
        const i = states.indexOf(st);
        if (i >= 0) states.splice(i, 1);
        save();
        dismissed.push(st.id);
        if (dismissed.length > MAX_DISMISSED) dismissed.splice(0, dismissed.length - MAX_DISMISSED);
        sessionStorage.setItem(DISMISSED_KEY, JSON.stringify(dismissed));
        showEmpty();
      },
    });
    cards.set(st.id, c);
    if (top) grid.prepend(c.el);
    else grid.appendChild(c.el);
    empty.hidden = true;
    return c;
  }

  function onEvent(m: Msg) {
    const id: string = m.type === "operation_state" ? m.operation.operation_id : m.operation_id;
    let c = cards.get(id);
    if (!c) {
      if (m.type !== "operation_started") return;
      const st: CardState = {
        id,
        agent: m.agent_id,
        type: m.operation_type,
        status: "running",
        progress: null,
        step: "",
        message: "",
        logs: [],
        seq: 0,
      };
      states.unshift(st);
      c = addCard(st, true);
      for (let i = states.length - 1; i >= 0 && states.length > MAX_CARDS; i--) {
        if (!isLive(states[i].status)) cards.get(states[i].id)?.dismiss();
      }
    }
    const st = c.st;
    switch (m.type) {
      case "operation_started":
        st.startedAt = m.started_at;
        st.agent = m.agent_id;
        st.type = m.operation_type;
        break;
      case "operation_progress":
        if (m.progress !== null && m.progress !== undefined) st.progress = m.progress;
        if (m.step) st.step = m.step;
        if (m.message) st.message = m.message;
        break;
      case "agui_event":
        st.agui ??= { items: [], steps: [] };
        applyAgui(st.agui, m.event);
        break;
      case "operation_input_requested":
        (st.inputs ??= []).push({ id: m.request_id, prompt: m.prompt, schema: m.schema });
        st.status = "waiting_input";
        break;
      case "operation_input_answered": {
        const r = st.inputs?.find((i) => i.id === m.request_id);
        if (r) r.answered = { value: m.value, status: m.status, by: m.by };
        if (!st.inputs?.some((i) => !i.answered)) st.status = "running";
        break;
      }
      case "operation_log":
        st.logs.push({ t: m.time, m: m.message });
        if (st.logs.length > MAX_LOG) st.logs.splice(0, st.logs.length - MAX_LOG);
        break;
      case "operation_completed":
        st.status = "completed";
        st.progress = 100;
        st.result = m.result ?? null;
        break;
      case "operation_failed":
        st.status = "failed";
        st.failure = { code: m.code, message: m.message };
        if (m.result !== undefined) st.result = m.result;
        break;
      case "operation_cancelled":
        st.status = "cancelled";
        st.message = m.message ?? "cancelled";
        break;
      case "operation_state": {
        // History was not recoverable: take the record as it is now.
        const r = m.operation;
        st.status = r.status;
        if (r.progress !== undefined) st.progress = r.progress;
        st.step = r.step ?? st.step;
        st.message = r.message ?? st.message;
        if (r.result !== undefined) st.result = r.result;
        if (r.failure) st.failure = r.failure;
        st.logs.push({ t: r.updated_at, m: "(some events were no longer stored; showing the latest state)" });
        break;
      }
    }
    if (typeof m.seq === "number") st.seq = m.seq;
    c.render();
    save();
  }

  // The form. GET /api/agents lists the agents and their operation types;
  // the fields stay free text (a worker may register an agent later).
  const agents = h("datalist", { id: "agent-ids" });
  const types = h("datalist", { id: "op-types" });
  const agent = h("input", { name: "agent", list: "agent-ids", required: true, testid: "op-agent", autocomplete: "off", placeholder: "agent id" });
  const type = h("input", { name: "type", list: "op-types", required: true, testid: "op-type", autocomplete: "off", placeholder: "operation type" });
  const input = h("textarea.mono", { name: "input", rows: 4, testid: "op-input", spellcheck: "false" });
  input.value = sessionStorage.getItem("tether.opInput") ?? "{}";
  agent.value = sessionStorage.getItem("tether.opAgent") ?? "";
  type.value = sessionStorage.getItem("tether.opType") ?? "";
  const err = h("p.form-error", { role: "alert", testid: "op-error" });
  const startBtn = h("button.primary", { type: "submit", testid: "op-start" }, "Start");
  const form = h(
    "form.card.op-form",
    {
      onsubmit: async (e: Event) => {
        e.preventDefault();
        err.textContent = "";
        let inp: Json = null;
        if (input.value.trim()) {
          try {
            inp = JSON.parse(input.value);
          } catch (x) {
            err.textContent = "Input is not valid JSON: " + (x as Error).message;
            return;
          }
        }
        sessionStorage.setItem("tether.opInput", input.value);
        sessionStorage.setItem("tether.opAgent", agent.value.trim());
        sessionStorage.setItem("tether.opType", type.value.trim());
        startBtn.disabled = true;
        try {
          await client.start(agent.value.trim(), type.value.trim(), inp);
        } catch (x) {
          err.textContent = (x as Error).message;
        } finally {
          startBtn.disabled = false;
        }
      },
    },
    h("div.form-head", {}, h("h2", {}, "Start an operation"), ind.el),
    h("div.row", {}, h("label", {}, "Agent", agent), h("label", {}, "Operation type", type)),
    h("label", {}, "Input (JSON)", input),
    err,
    h(
      "div.form-foot",
      {},
      h("span.muted.small", {}, "Agents are declared in tether.yaml or connect as workers (docs/agents.md)."),
      startBtn,
    ),
    agents,
    types,
  );
  root.appendChild(h("div.ops", {}, form, h("h2.section-title", {}, "Operations"), empty, failure, grid));

  function showEmpty() {
    empty.hidden = cards.size > 0;
    if (listed)
      empty.textContent =
        "No operations yet. Operations you start here or elsewhere (the REST API, another tab, a program) appear here as cards, live. They keep running if you close the page.";
  }

  for (const st of states) addCard(st, false);
  for (const st of states) client.track(st.id, st.seq, !isLive(st.status));
  showEmpty();

  // The user's operations (an admin's: everyone's) from the server, so that
  // those started elsewhere show too; newest first, at most MAX_CARDS.
  async function refreshList() {
    let records: OperationRecord[];
    try {
      records = await listOperations(s.token);
    } catch (e) {
      if (unauthorized(e)) return;
      failure.textContent = `Could not ${listed ? "refresh" : "load"} your operations: ${(e as Error).message}. Retrying every ${POLL_MS / 1000}s.`;
      failure.hidden = false;
      if (!listed) empty.hidden = true;
      return;
    }
    failure.hidden = true;
    listed = true;
    grid.removeAttribute("aria-busy");
    const added: CardState[] = [];
    for (const r of records) {
      if (cards.size >= MAX_CARDS) break;
      if (cards.has(r.operation_id) || dismissed.includes(r.operation_id)) continue;
      const st = fromRecord(r, s.info.sub);
      states.push(st);
      added.push(st);
      addCard(st, false);
    }
    if (added.length) {
      // Newest first, wherever each card came from.
      states.sort((a, b) => (b.startedAt ?? "\uffff").localeCompare(a.startedAt ?? "\uffff"));
      for (const st of states) {
        const el = cards.get(st.id)?.el;
        if (el) grid.appendChild(el);
      }
      for (const st of added) client.track(st.id, st.seq, !isLive(st.status));
      save();
    }
    showEmpty();
  }
  void refreshList();
  const timer = setInterval(refreshList, POLL_MS);

  // Suggest the operation types of the chosen agent.
  const typesByAgent = new Map<string, string[]>();
  const fillTypes = () => {
    types.replaceChildren(...(typesByAgent.get(agent.value.trim()) ?? []).map((v) => h("option", { value: v })));
  };
  agent.addEventListener("input", fillTypes);
  void api<{ agents: { agent_id: string; kind: string; operations: string[] }[] }>(s.token, "GET", "/api/agents")
    .then((r) => {
      for (const a of r.agents ?? []) {
        typesByAgent.set(a.agent_id, a.operations ?? []);
        agents.appendChild(h("option", { value: a.agent_id, label: `${a.agent_id} (${a.kind})` }));
      }
      const first = r.agents?.[0];
      if (!agent.value && first) {
        agent.value = first.agent_id;
        if (!type.value && first.operations?.length) type.value = first.operations[0];
      }
      fillTypes();
    })
    .catch((e) => unauthorized(e));

  return () => {
    clearInterval(timer);
    client.close();
  };
};

class Card {
  el: HTMLElement;
  private bar = h("div.bar-fill");
  private barWrap: HTMLElement;
  private pct = h("span.pct", { testid: "op-progress" });
  private pill = h("span.pill", { testid: "op-status" });
  private step = h("div.step", { testid: "op-step" });
  private log = h("pre.log", { testid: "op-log" });
  private outcome = h("div.outcome", { testid: "op-outcome" });
  private aguiEl = h("div.agui", { testid: "op-agui" });
  private inputsEl = h("div.inputs", { testid: "op-inputs" });
  private answer: (requestId: string, value: Json) => Promise<void>;
  private cancelBtn: HTMLButtonElement;
  private dismissBtn: HTMLButtonElement;
  private shownLogs = 0;
  readonly dismiss: () => void;

  constructor(
    readonly st: CardState,
    actions: { cancel: () => void; dismiss: () => void; answer: (requestId: string, value: Json) => Promise<void> },
  ) {
    this.dismiss = actions.dismiss;
    this.answer = actions.answer;
    this.barWrap = h("div.bar", { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 }, this.bar);
    this.cancelBtn = h("button.ghost.small.danger", { testid: "op-cancel", onclick: actions.cancel }, "Cancel");
    this.dismissBtn = h("button.ghost.small", { testid: "op-dismiss", onclick: actions.dismiss, title: "Remove this card" }, "Dismiss");
    this.el = h(
      "article.card.op",
      { testid: "op-card", "data-id": st.id },
      h(
        "header.op-head",
        {},
        h(
          "div",
          {},
          h("div.op-title", {}, `${st.agent} · ${st.type}`),
          h("code.op-id.muted", { testid: "op-id" }, st.id),
          st.owner ? h("span.muted.small", { testid: "op-owner" }, ` · ${st.owner}`) : null,
        ),
        h("div.op-actions", {}, this.pill, this.cancelBtn, this.dismissBtn),
      ),
      h("div.progress-row", {}, this.barWrap, this.pct),
      this.step,
      this.inputsEl,
      this.aguiEl,
      this.log,
      this.outcome,
    );
    this.render();
  }

  render() {
    const st = this.st;
    this.el.dataset.status = st.status;
    this.pill.textContent = st.status;
    this.pill.dataset.kind = st.status === "completed" ? "ok" : isLive(st.status) ? "running" : st.status === "failed" ? "error" : "done";
    const p = st.progress;
    this.barWrap.classList.toggle("indeterminate", p === null && isLive(st.status));
    this.bar.style.width = `${p ?? 0}%`;
    if (p !== null) this.barWrap.setAttribute("aria-valuenow", String(p));
    this.pct.textContent = p === null ? "" : `${Math.round(p)}%`;
    this.step.textContent = [st.step, st.message].filter(Boolean).join(" — ") || (st.status === "running" && !st.agui ? "Waiting for the agent…" : "");
    // Append only new log lines, so that scrolling and selection survive.
    if (this.shownLogs > st.logs.length) {
      clear(this.log);
      this.shownLogs = 0;
    }
    const atBottom = this.log.scrollTop + this.log.clientHeight >= this.log.scrollHeight - 4;
    for (const l of st.logs.slice(this.shownLogs)) {
      this.log.appendChild(h("div.log-line", {}, h("span.muted", {}, fmtTime(l.t) + "  "), l.m));
    }
    this.shownLogs = st.logs.length;
    this.log.hidden = st.logs.length === 0;
    if (atBottom) this.log.scrollTop = this.log.scrollHeight;
    this.renderAgui();
    this.renderInputs();
    clear(this.outcome);
    if (st.failure) {
      this.outcome.appendChild(h("div.failure", {}, h("strong", {}, st.failure.code), ": ", st.failure.message));
    }
    if (st.status !== "running" && st.result !== undefined) {
      this.outcome.appendChild(h("div.muted.small", {}, st.failure ? "Partial result" : "Result"));
      this.outcome.appendChild(h("pre.result", { testid: "op-result" }, JSON.stringify(st.result, null, 2)));
    }
    this.cancelBtn.hidden = !isLive(st.status);
    this.dismissBtn.hidden = isLive(st.status);
  }

  /** Streamed text, tool calls with their arguments and results, the open
   * steps and the state as a tree. Rebuilt on each event: a card holds at
   * most MAX_ITEMS items. */
  private renderAgui() {
    const v = this.st.agui;
    this.aguiEl.hidden = !v;
    if (!v) return;
    const openState = new Set([...this.aguiEl.querySelectorAll("details[open]")].map((d) => d.querySelector("summary")?.textContent ?? ""));
    clear(this.aguiEl);
    if (v.steps.length) this.aguiEl.appendChild(h("div.muted.small", { testid: "op-steps" }, "Steps: " + v.steps.join(", ")));
    for (const i of v.items) {
      if (i.kind === "text")
        this.aguiEl.appendChild(h("div.agui-text", { testid: "op-text", "data-id": i.id, "data-open": String(i.open) }, h("span.muted.small", {}, i.role + " "), i.text));
      else
        this.aguiEl.appendChild(
          h(
            "div.agui-tool",
            { testid: "op-tool", "data-id": i.id },
            h("strong", {}, i.name),
            h("code.mono", { testid: "op-tool-args" }, "(" + i.args + ")"),
            i.result !== undefined ? h("div.small", { testid: "op-tool-result" }, "→ " + i.result) : null,
          ),
        );
    }
    if (v.state !== undefined) {
      const t = tree(v.state, "state", true);
      t.dataset.testid = "op-state";
      for (const d of [t, ...t.querySelectorAll("details")] as HTMLDetailsElement[])
        if (openState.has(d.querySelector("summary")?.textContent ?? "")) d.open = true;
      this.aguiEl.appendChild(t);
    }
  }

  /** A form per open input request; answered ones as a line. */
  private renderInputs() {
    const list = this.st.inputs ?? [];
    this.inputsEl.hidden = list.length === 0;
    // Keep an open form (and what is typed in it) across renders.
    for (const r of list) {
      const sel = `[data-request="${CSS.escape(r.id)}"]`;
      const el = this.inputsEl.querySelector<HTMLElement>(sel);
      if (el && el.dataset.answered === String(!!r.answered)) continue;
      const node = r.answered
        ? h("div.input-answered.small", { "data-request": r.id, "data-answered": "true", testid: "op-input-answered" },
            `${r.prompt} → ${JSON.stringify(r.answered.value)} (${r.answered.status}, ${r.answered.by})`)
        : this.inputForm(r);
      if (el) el.replaceWith(node);
      else this.inputsEl.appendChild(node);
    }
  }

  private inputForm(r: InputReq): HTMLElement {
    const boolean = (r.schema as any)?.type === "boolean";
    const value = h("textarea.mono", { rows: 2, testid: "op-input-value", spellcheck: "false" });
    value.value = boolean ? "true" : '""';
    const err = h("p.form-error", { role: "alert" });
    const send = async (v: string) => {
      err.textContent = "";
      let parsed: Json;
      try {
        parsed = JSON.parse(v);
      } catch (x) {
        err.textContent = "The answer is not valid JSON: " + (x as Error).message;
        return;
      }
      try {
        await this.answer(r.id, parsed);
      } catch (x) {
        err.textContent = (x as Error).message;
      }
    };
    return h(
      "form.input-form",
      { "data-request": r.id, "data-answered": "false", testid: "op-input-form", onsubmit: (e: Event) => (e.preventDefault(), void send(value.value)) },
      h("div", {}, h("strong", {}, "Input requested: "), r.prompt),
      r.schema !== undefined ? h("div.muted.small", {}, "Schema: " + JSON.stringify(r.schema)) : null,
      boolean
        ? h("div.row", {},
            h("button.primary.small", { type: "button", testid: "op-input-yes", onclick: () => void send("true") }, "Yes"),
            h("button.ghost.small", { type: "button", testid: "op-input-no", onclick: () => void send("false") }, "No"))
        : h("div", {}, value, h("button.primary.small", { type: "submit", testid: "op-input-send" }, "Answer")),
      err,
    );
  }
}
