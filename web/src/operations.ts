// The agent-guidance canvas: start operations and watch each as a card.
import { h, clear, fmtTime, indicator, toast } from "./dom";
import { api, listOperations, OperationsClient, type Json, type Msg, type OperationRecord } from "./tether";
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
  status: "running" | "completed" | "failed" | "cancelled";
  progress: number | null;
  step: string;
  message: string;
  logs: { t: string; m: string }[];
  result?: Json;
  failure?: { code: string; message: string };
  seq: number;
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
    progress: r.status === "running" ? null : (r.progress ?? null),
    step: r.status === "running" ? "" : (r.step ?? ""),
    message: r.status === "running" ? "" : (r.message ?? ""),
    logs: [],
    result: r.result,
    failure: r.failure,
    seq: r.status === "running" ? 0 : r.last_seq,
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
        if (states[i].status !== "running") cards.get(states[i].id)?.dismiss();
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
  for (const st of states) client.track(st.id, st.seq, st.status !== "running");
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
      for (const st of added) client.track(st.id, st.seq, st.status !== "running");
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
  private cancelBtn: HTMLButtonElement;
  private dismissBtn: HTMLButtonElement;
  private shownLogs = 0;
  readonly dismiss: () => void;

  constructor(
    readonly st: CardState,
    actions: { cancel: () => void; dismiss: () => void },
  ) {
    this.dismiss = actions.dismiss;
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
      this.log,
      this.outcome,
    );
    this.render();
  }

  render() {
    const st = this.st;
    this.el.dataset.status = st.status;
    this.pill.textContent = st.status;
    this.pill.dataset.kind = st.status === "completed" ? "ok" : st.status === "running" ? "running" : st.status === "failed" ? "error" : "done";
    const p = st.progress;
    this.barWrap.classList.toggle("indeterminate", p === null && st.status === "running");
    this.bar.style.width = `${p ?? 0}%`;
    if (p !== null) this.barWrap.setAttribute("aria-valuenow", String(p));
    this.pct.textContent = p === null ? "" : `${Math.round(p)}%`;
    this.step.textContent = [st.step, st.message].filter(Boolean).join(" — ") || (st.status === "running" ? "Waiting for the agent…" : "");
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
    clear(this.outcome);
    if (st.failure) {
      this.outcome.appendChild(h("div.failure", {}, h("strong", {}, st.failure.code), ": ", st.failure.message));
    }
    if (st.status !== "running" && st.result !== undefined) {
      this.outcome.appendChild(h("div.muted.small", {}, st.failure ? "Partial result" : "Result"));
      this.outcome.appendChild(h("pre.result", { testid: "op-result" }, JSON.stringify(st.result, null, 2)));
    }
    this.cancelBtn.hidden = st.status !== "running";
    this.dismissBtn.hidden = st.status === "running";
  }
}
