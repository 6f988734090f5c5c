// Milestones: a live list and a terminal per milestone.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { h, clear, fmtAgo, indicator, toast } from "./dom";
import { api, download, TerminalClient } from "./tether";
import { unauthorized, type Session, type View } from "./session";

interface Milestone {
  id: string;
  name?: string;
  owner: string;
  command?: string[];
  status: "pending" | "running" | "finished";
  reason?: string;
  exit_code?: number;
  signal?: string;
  created_at?: string;
  started_at?: string;
  finished_at?: string;
  error?: string;
}

/** How often the list is refreshed. */
const POLL_MS = 3000;

export const milestonesView: View = (root, s, arg) => {
  let selected: string | undefined = arg;
  let items: Milestone[] = [];
  // Until the first answer the list is unknown, not empty.
  let loaded = false;
  let term: TerminalPane | null = null;
  const list = h("ul.list", { testid: "milestone-list", "aria-label": "Milestones", "aria-busy": "true" });
  const empty = h("p.muted.empty", { testid: "milestones-empty" }, "Loading…");
  const failure = h("p.form-error", { testid: "milestones-error", role: "alert", hidden: true });
  const pane = h("section.pane.terminal-pane", { testid: "terminal-pane" });
  const side = h(
    "aside.side",
    {},
    h("div.side-head", {}, h("h2", {}, "Milestones"), h("span.muted.small", { title: `refreshed every ${POLL_MS / 1000}s` }, "live")),
    s.admin ? createForm(s, (m) => (location.hash = `#/milestones/${encodeURIComponent(m.id)}`)) : null,
    list,
    empty,
    failure,
  );
  root.appendChild(h("div.split", {}, side, pane));

  function renderList() {
    clear(list);
    empty.hidden = loaded && items.length > 0;
    if (loaded) empty.textContent = "No milestones yet.";
    for (const m of items) {
      const a = h(
        "a.item",
        {
          href: `#/milestones/${encodeURIComponent(m.id)}`,
          testid: "milestone-item",
          "data-id": m.id,
          "aria-current": m.id === selected ? "true" : undefined,
        },
        h("div.item-main", {}, h("span.item-title", {}, m.name || m.id), statusPill(m)),
        h(
          "div.item-sub.muted",
          {},
          h("code", {}, (m.command ?? []).join(" ") || "default shell"),
          " · ",
          m.owner,
          " · ",
          fmtAgo(m.created_at),
        ),
      );
      list.appendChild(h("li", {}, a));
    }
  }

  async function refresh() {
    try {
      const r = await api<{ milestones: Milestone[] }>(s.token, "GET", "/api/milestones");
      items = (r.milestones ?? []).sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? ""));
      loaded = true;
      list.removeAttribute("aria-busy");
      failure.hidden = true;
      renderList();
      const cur = items.find((m) => m.id === selected);
      if (cur) term?.update(cur);
    } catch (e) {
      if (unauthorized(e)) return;
      // Said where the list is, and tried again at the next poll.
      failure.textContent = `Could not ${loaded ? "refresh" : "load"} the milestones: ${(e as Error).message}. Retrying every ${POLL_MS / 1000}s.`;
      failure.hidden = false;
      if (!loaded) empty.hidden = true;
    }
  }

  function open(id: string | undefined) {
    selected = id;
    term?.close();
    term = null;
    clear(pane);
    renderList();
    if (!id) {
      pane.appendChild(
        h(
          "div.placeholder",
          {},
          h("h3", {}, "Open a milestone"),
          h("p.muted", {}, "Pick one on the left to attach its terminal. Terminals keep running when you leave; coming back resumes them."),
        ),
      );
      return;
    }
    term = new TerminalPane(pane, s, id, items.find((m) => m.id === id));
    // Attaching starts a pending milestone: show its new status soon.
    setTimeout(refresh, 600);
  }

  const onRoute = (e: Event) => open((e as CustomEvent<string | undefined>).detail);
  window.addEventListener("tether:milestone", onRoute);
  open(selected);
  void refresh();
  const timer = setInterval(refresh, POLL_MS);
  return () => {
    clearInterval(timer);
    window.removeEventListener("tether:milestone", onRoute);
    term?.close();
  };
};

function statusPill(m: Milestone) {
  let text: string = m.status;
  if (m.status === "finished" && m.reason === "exited") text = `exited ${m.exit_code ?? ""}`.trim();
  else if (m.status === "finished" && m.reason) text = m.reason.replace(/_/g, " ");
  const kind = m.status === "finished" ? (m.reason === "exited" && m.exit_code === 0 ? "ok" : "done") : m.status;
  return h("span.pill", { "data-kind": kind, testid: "milestone-status" }, text);
}

/** Splits a command line into argv: whitespace-separated words, with
 * '…' and "…" quoting; a JSON array is taken as is. */
export function parseCommand(line: string): string[] {
  const t = line.trim();
  if (!t) return [];
  if (t.startsWith("[")) return JSON.parse(t);
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(t))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

function createForm(s: Session, created: (m: Milestone) => void) {
  const name = h("input", { name: "name", placeholder: "Build #42", testid: "ms-name", "aria-label": "Name" });
  const cmd = h("input", { name: "command", placeholder: "sh   (empty: the server's default)", testid: "ms-command", "aria-label": "Command" });
  const err = h("p.form-error", { role: "alert" });
  const form = h(
    "form.create",
    {
      testid: "ms-create",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        err.textContent = "";
        let command: string[];
        try {
          command = parseCommand(cmd.value);
        } catch {
          err.textContent = "The command must be words or a JSON array of strings.";
          return;
        }
        const body: Record<string, unknown> = {};
        if (name.value.trim()) body.name = name.value.trim();
        if (command.length) body.command = command;
        try {
          const m = await api<Milestone>(s.token, "POST", "/api/milestones", body);
          name.value = "";
          cmd.value = "";
          details.open = false;
          created(m);
        } catch (e) {
          if (!unauthorized(e)) err.textContent = (e as Error).message;
        }
      },
    },
    h("label", {}, "Name", name),
    h("label", {}, "Command", cmd),
    err,
    h("button.primary", { type: "submit", testid: "ms-submit" }, "Create and open"),
  );
  const details = h("details.new", {}, h("summary", { testid: "ms-new" }, "+ New milestone"), form);
  return details;
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function xtermTheme() {
  return {
    background: cssVar("--term-bg"),
    foreground: cssVar("--term-fg"),
    cursor: cssVar("--term-fg"),
    selectionBackground: cssVar("--term-sel"),
  };
}

/** A milestone's terminal: xterm.js wired to a TerminalClient. */
class TerminalPane {
  private term: Terminal;
  private fit: FitAddon;
  private client: TerminalClient | null = null;
  private ro: ResizeObserver;
  private ind = indicator("term-indicator");
  private exitBox = h("div.exit", { testid: "term-exit", hidden: true });
  private title = h("h2.pane-title", {});
  private pill = h("span");
  private finishBtn!: HTMLButtonElement;
  /** Writes of replayed output still being parsed: while > 0, what xterm.js
   * emits through onData (answers to DA/DSR queries in the replayed bytes)
   * is dropped, so that old queries are not answered into the program. */
  private replaying = 0;
  private resizeTimer: ReturnType<typeof setTimeout> | undefined;
  private mq = window.matchMedia("(prefers-color-scheme: dark)");
  private onScheme = () => (this.term.options.theme = xtermTheme());

  constructor(
    pane: HTMLElement,
    private s: Session,
    private id: string,
    m?: Milestone,
  ) {
    const dl = h("button.ghost.small", { testid: "term-download", onclick: () => this.download() }, "Download recording");
    const finish = h("button.ghost.small.danger", { testid: "term-finish", onclick: () => this.finish() }, "Finish");
    this.finishBtn = finish;
    const host = h("div.term-host", { testid: "terminal" });
    pane.appendChild(
      h(
        "div.pane-head",
        {},
        h("div.pane-title-row", {}, this.title, this.pill),
        h("div.pane-actions", {}, this.ind.el, dl, finish),
      ),
    );
    pane.appendChild(host);
    pane.appendChild(this.exitBox);
    this.title.textContent = m?.name || id;
    if (m) this.update(m);

    this.term = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", Menlo, monospace',
      fontSize: 13,
      scrollback: 5000,
      theme: xtermTheme(),
      allowProposedApi: false,
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.loadAddon(new WebLinksAddon());
    this.term.open(host);
    this.mq.addEventListener("change", this.onScheme);
    this.term.onData((d) => {
      if (this.replaying > 0) return;
      this.client?.input(d);
    });
    this.term.onBinary((d) => {
      if (this.replaying > 0) return;
      this.client?.input(d);
    });
    this.term.onResize(({ cols, rows }) => {
      clearTimeout(this.resizeTimer);
      this.resizeTimer = setTimeout(() => this.client?.resize(cols, rows), 100);
    });
    this.ro = new ResizeObserver(() => this.doFit());
    this.ro.observe(host);
    this.doFit();

    if (m && m.status === "finished") {
      this.showFinished(m);
      return;
    }
    this.connect();
    this.term.focus();
  }

  private doFit() {
    try {
      this.fit.fit();
    } catch {
      /* not laid out yet */
    }
  }

  private connect() {
    this.client = new TerminalClient(this.s.token, this.id, {
      output: (data, { reset, replay }) => {
        if (reset) this.term.reset();
        if (replay) {
          this.replaying++;
          this.term.write(data, () => this.replaying--);
        } else {
          this.term.write(data);
        }
      },
      status: () => {
        // Our size wins on attach (the most recent resize wins).
        this.client?.resize(this.term.cols, this.term.rows);
      },
      exit: (code, signal) => this.showExit(code, signal),
      error: (code, message) => {
        if (code === "milestone_finished" || code === "not_found" || code === "forbidden") {
          this.exitBox.hidden = false;
          this.exitBox.dataset.kind = "error";
          this.exitBox.textContent = message;
        } else if (code !== "input_busy") {
          toast(`${code}: ${message}`, "error");
        }
      },
      state: (st, info) => {
        if (this.client?.exited) {
          this.ind.set("exited", "ended");
          return;
        }
        if (st === "reconnecting" && info.retryIn !== undefined) {
          this.ind.set("reconnecting", `reconnecting in ${Math.ceil(info.retryIn / 1000)}s`);
        } else if (st === "open") this.ind.set("open", "connected");
        else if (st === "closed") this.ind.set("closed", "disconnected");
        else this.ind.set(st);
      },
    });
  }

  update(m: Milestone) {
    this.title.textContent = m.name || m.id;
    this.finishBtn.hidden = m.status === "finished";
    const p = statusPill(m);
    this.pill.replaceWith(p);
    this.pill = p;
  }

  private showExit(code: number, signal?: string) {
    this.exitBox.hidden = false;
    this.exitBox.dataset.kind = code === 0 ? "ok" : "error";
    this.exitBox.textContent = `Program exited with code ${code}` + (signal ? ` (${signal})` : "") + ".";
    this.ind.set("exited", "ended");
    this.finishBtn.hidden = true;
  }

  private showFinished(m: Milestone) {
    this.ind.set("exited", "ended");
    if (m.reason === "exited") this.showExit(m.exit_code ?? 0, m.signal);
    else {
      this.exitBox.hidden = false;
      this.exitBox.dataset.kind = "error";
      this.exitBox.textContent = `Finished (${(m.reason ?? "").replace(/_/g, " ")}).` + (m.error ? " " + m.error : "");
    }
    void this.playRecording();
  }

  /** Shows a finished milestone's output from its asciicast recording. */
  private async playRecording() {
    let cast: string;
    try {
      cast = await (await download(this.s.token, `/api/milestones/${encodeURIComponent(this.id)}/recording`)).text();
    } catch (e) {
      if (!unauthorized(e)) {
        const why = e instanceof Error ? ` (${e.message})` : "";
        this.term.write(`\x1b[2mThis milestone has finished; its recording cannot be shown${why}.\x1b[0m\r\n`);
      }
      return;
    }
    let out = "";
    for (const line of cast.split("\n").slice(1)) {
      try {
        const ev = JSON.parse(line);
        if (Array.isArray(ev) && ev[1] === "o") out += ev[2];
      } catch {
        /* an empty or truncated line */
      }
    }
    this.term.reset();
    // Recorded queries must not be answered either.
    this.replaying++;
    this.term.write(out, () => this.replaying--);
    this.term.write("\r\n\x1b[2m(recording of the finished session)\x1b[0m\r\n");
  }

  private async download() {
    try {
      const blob = await download(this.s.token, `/api/milestones/${encodeURIComponent(this.id)}/recording`);
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: `${this.id}.cast` });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) {
      if (!unauthorized(e)) toast("Recording: " + (e as Error).message, "error");
    }
  }

  private async finish() {
    if (!confirm(`End the program of ${this.id}?`)) return;
    try {
      await api(this.s.token, "POST", `/api/milestones/${encodeURIComponent(this.id)}/finish`);
    } catch (e) {
      if (!unauthorized(e)) toast((e as Error).message, "error");
    }
  }

  close() {
    clearTimeout(this.resizeTimer);
    this.ro.disconnect();
    this.mq.removeEventListener("change", this.onScheme);
    this.client?.close();
    this.term.dispose();
  }
}
