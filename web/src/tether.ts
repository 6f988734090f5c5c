// tether.ts: a small browser client for Tether's wire protocol
// (docs/protocol.md), kept apart from the console's views so that other
// frontends can copy it. It has no dependencies.
//
//   - authentication: the token travels as the WebSocket subprotocol
//     "tether.token.<jwt>" next to "tether.v1" (never in a URL), and as
//     "Authorization: Bearer" on REST calls;
//   - requests carry ids; replies resolve the matching promise;
//   - every socket reconnects by itself with exponential backoff and jitter,
//     except after a close that retrying cannot fix (4000, 4001, 4003, 4004,
//     1000);
//   - terminals resume from the last output offset (?since=), so nothing is
//     lost or repeated across a reconnect;
//   - operations resume from the last seq (subscribe_operation after_seq).

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = { type: string; id?: string | number; [k: string]: any };

// ---------------------------------------------------------------- tokens

export interface TokenInfo {
  sub: string;
  roles: string[];
  channels: string[];
  exp?: number;
}

/** Reads a JWT's claims without verifying it (the server does that). */
export function tokenInfo(token: string): TokenInfo | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const c = JSON.parse(new TextDecoder().decode(bytes));
    if (typeof c.sub !== "string") return null;
    return {
      sub: c.sub,
      roles: Array.isArray(c.roles) ? c.roles : [],
      channels: Array.isArray(c.channels) ? c.channels : [],
      exp: typeof c.exp === "number" ? c.exp : undefined,
    };
  } catch {
    return null;
  }
}

/** The subprotocols a browser offers: the server answers "tether.v1". */
export function subprotocols(token: string): string[] {
  return ["tether.v1", "tether.token." + token];
}

/** The ws:// or wss:// URL of path on the page's own server. */
export function wsURL(path: string): string {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${location.host}${path}`;
}

// ---------------------------------------------------------------- REST

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Calls a REST endpoint with the token; errors become ApiError. */
export async function api<T = unknown>(token: string, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Authorization: "Bearer " + token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const e = (data ?? {}) as { error?: string; message?: string };
    throw new ApiError(res.status, e.error ?? "http_" + res.status, e.message ?? (text || res.statusText));
  }
  return data as T;
}

/** Downloads path with the token and returns it as a Blob. */
export async function download(token: string, path: string): Promise<Blob> {
  const res = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  if (!res.ok) {
    let msg = res.statusText;
    try {
      msg = ((await res.json()) as { message?: string }).message ?? msg;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, "http_" + res.status, msg);
  }
  return res.blob();
}

// ---------------------------------------------------------------- operations (REST)

/** An operation's record, as GET /api/operations lists them. */
export interface OperationRecord {
  operation_id: string;
  agent_id: string;
  operation_type: string;
  owner: string;
  status: "running" | "waiting_input" | "completed" | "failed" | "cancelled";
  progress?: number;
  step?: string;
  message?: string;
  started_at: string;
  updated_at: string;
  ended_at?: string;
  result?: Json;
  failure?: { code: string; message: string };
  last_seq: number;
  node: string;
  kind: "command" | "remote";
}

/** Whether an operation of this status has not ended. */
export function isLive(status: string): boolean {
  return status === "running" || status === "waiting_input";
}

/** Lists operations, newest first: the user's own (an admin's: everyone's),
 * optionally of one agent or status. */
export async function listOperations(
  token: string,
  filter: { agent_id?: string; status?: string } = {},
): Promise<OperationRecord[]> {
  const q = new URLSearchParams(Object.entries(filter).filter(([, v]) => v) as [string, string][]).toString();
  const r = await api<{ operations: OperationRecord[] }>(token, "GET", "/api/operations" + (q ? "?" + q : ""));
  return r.operations ?? [];
}

// ---------------------------------------------------------------- sockets

/** Delay before reconnect attempt n (0-based): exponential, capped, with
 * "equal jitter" so that many clients dropped at once spread out. */
export function backoff(attempt: number, baseMs = 500, maxMs = 15000): number {
  const d = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 16));
  return d / 2 + Math.random() * (d / 2);
}

export type SocketState = "connecting" | "open" | "reconnecting" | "closed";

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSES = new Set([1000, 4000, 4001, 4003, 4004]);

export interface SocketEvents {
  /** Every message from the server. */
  message?: (m: Msg) => void;
  /** Connection state; retryIn is the delay before the next attempt. */
  state?: (s: SocketState, info: { code?: number; reason?: string; retryIn?: number }) => void;
  /** The connection is open (again): resubscribe, resume. */
  open?: (reconnected: boolean) => void;
}

/**
 * A WebSocket that reconnects with backoff and matches replies to requests
 * by id. url() is called before every attempt, so that it can carry a
 * resume position (e.g. ?since=).
 */
export class Socket {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private opened = false;
  private nextId = 1;
  private pending = new Map<string, { resolve: (m: Msg) => void; reject: (e: Error) => void }>();
  // Requests made while the connection is (re)opening, sent once it opens.
  private waiting = new Set<{ send: () => void; fail: (e: Error) => void }>();
  state: SocketState = "connecting";

  constructor(
    private url: () => string,
    private token: string,
    private ev: SocketEvents,
  ) {
    this.connect();
  }

  private setState(s: SocketState, info: { code?: number; reason?: string; retryIn?: number } = {}) {
    this.state = s;
    this.ev.state?.(s, info);
  }

  private connect() {
    this.setState(this.opened ? "reconnecting" : "connecting");
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url(), subprotocols(this.token));
    } catch (e) {
      this.scheduleRetry(undefined, String(e));
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const again = this.opened;
      this.opened = true;
      this.attempt = 0;
      this.setState("open");
      this.ev.open?.(again);
      const waiting = [...this.waiting];
      this.waiting.clear();
      for (const w of waiting) w.send();
    };
    ws.onmessage = (e) => {
      if (typeof e.data !== "string") return;
      let m: Msg;
      try {
        m = JSON.parse(e.data);
      } catch {
        return;
      }
      if (m.id !== undefined && m.id !== null) {
        const p = this.pending.get(String(m.id));
        if (p) {
          this.pending.delete(String(m.id));
          p.resolve(m);
        }
      }
      this.ev.message?.(m);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const p of this.pending.values()) p.reject(new Error("connection closed"));
      this.pending.clear();
      if (this.stopped) return;
      if (FINAL_CLOSES.has(e.code)) {
        this.stopped = true;
        this.failWaiting(new Error(`connection closed: ${e.code} ${e.reason}`));
        this.setState("closed", { code: e.code, reason: e.reason });
        return;
      }
      this.scheduleRetry(e.code, e.reason);
    };
    // onerror is always followed by onclose.
  }

  private scheduleRetry(code?: number, reason?: string) {
    const delay = backoff(this.attempt++);
    this.setState("reconnecting", { code, reason, retryIn: delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnects now instead of waiting for the backoff. */
  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.connect();
  }

  /** Sends m if the connection is open; returns whether it was sent. */
  send(m: Msg): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(m));
    return true;
  }

  /** Sends m with a fresh id and resolves with the reply carrying it. A
   * request made while the connection is still opening or reopening is
   * sent once it is open; timeoutMs counts from the call either way. */
  request(m: Msg, timeoutMs = 10000): Promise<Msg> {
    const id = "r" + this.nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        this.waiting.delete(waiter);
        reject(new Error(`no reply to ${m.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = {
        resolve: (r: Msg) => {
          clearTimeout(t);
          resolve(r);
        },
        reject: (e: Error) => {
          clearTimeout(t);
          reject(e);
        },
      };
      const waiter = {
        send: () => {
          if (this.send({ ...m, id })) this.pending.set(id, settle);
          else settle.reject(new Error("not connected"));
        },
        fail: settle.reject,
      };
      if (this.stopped) settle.reject(new Error("connection closed"));
      else if (this.ws?.readyState === WebSocket.OPEN) waiter.send();
      else this.waiting.add(waiter);
    });
  }

  private failWaiting(e: Error) {
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const w of waiting) w.fail(e);
  }

  /** Closes for good. */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.failWaiting(new Error("connection closed"));
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.send(JSON.stringify({ type: "disconnect" }));
      } catch {
        /* closing anyway */
      }
      ws.close(1000);
    }
    this.setState("closed", { code: 1000 });
  }
}

// ---------------------------------------------------------------- terminals

export interface TerminalEvents {
  /** Output to show. reset: a replay begins, clear the terminal first.
   * replay: the bytes are replayed history (see TerminalView: queries in
   * them must not be answered). */
  output: (data: string | Uint8Array, opts: { reset: boolean; replay: boolean }) => void;
  status?: (m: Msg) => void;
  size?: (cols: number, rows: number) => void;
  exit?: (code: number, signal?: string) => void;
  error?: (code: string, message: string) => void;
  state?: (s: SocketState, info: { code?: number; reason?: string; retryIn?: number }) => void;
}

function decodeOutput(m: Msg): string | Uint8Array {
  if (m.encoding !== "base64") return m.data as string;
  return Uint8Array.from(atob(m.data as string), (c) => c.charCodeAt(0));
}

/**
 * A milestone's terminal. It keeps the offset just after the last byte it
 * delivered and reconnects with ?since=<offset>, so output continues exactly
 * where it stopped; a replay (first attach, or a client that fell behind)
 * starts with reset.
 */
export class TerminalClient {
  readonly socket: Socket;
  /** The offset just after the last output delivered, null before any. */
  offset: number | null = null;
  exited = false;

  constructor(
    token: string,
    readonly milestoneId: string,
    private ev: TerminalEvents,
    opts: { since?: number | null; view?: boolean } = {},
  ) {
    this.offset = opts.since ?? null;
    const base = `/api/milestones/${encodeURIComponent(milestoneId)}/terminal`;
    this.socket = new Socket(
      () => {
        const q = new URLSearchParams();
        if (this.offset !== null) q.set("since", String(this.offset));
        if (opts.view) q.set("mode", "view");
        const qs = q.toString();
        return wsURL(base + (qs ? "?" + qs : ""));
      },
      token,
      { message: (m) => this.onMessage(m), state: (s, info) => this.ev.state?.(s, info) },
    );
  }

  private onMessage(m: Msg) {
    switch (m.type) {
      case "status":
        this.ev.status?.(m);
        if (typeof m.cols === "number") this.ev.size?.(m.cols, m.rows);
        break;
      case "replay":
        this.offset = m.offset;
        this.ev.output(decodeOutput(m), { reset: typeof m.start === "number", replay: true });
        break;
      case "output":
        // Never deliver twice: an output at or before the offset we have
        // was already shown.
        if (this.offset !== null && m.offset <= this.offset) return;
        this.offset = m.offset;
        this.ev.output(decodeOutput(m), { reset: false, replay: false });
        break;
      case "size":
        this.ev.size?.(m.cols, m.rows);
        break;
      case "exit":
        this.exited = true;
        this.ev.exit?.(m.code, m.signal);
        break;
      case "error":
        if (m.code === "invalid_offset") {
          // Our offset is unknown to the server (e.g. it restarted): take a
          // replay on the next attempt.
          this.offset = null;
        }
        this.ev.error?.(m.code, m.message);
        break;
    }
  }

  input(data: string) {
    this.socket.send({ type: "input", data });
  }
  resize(cols: number, rows: number) {
    this.socket.send({ type: "resize", cols, rows });
  }
  signal(signal: string) {
    this.socket.send({ type: "signal", signal });
  }
  close() {
    this.socket.close();
  }
}

// ---------------------------------------------------------------- operations

export const FINAL_EVENTS = new Set(["operation_completed", "operation_failed", "operation_cancelled"]);

export interface OperationEvents {
  /** An event of a tracked operation, each seq delivered at most once and
   * in order; operation_state (no seq) when history was not recoverable. */
  event: (m: Msg) => void;
  /** The server refused a request about an operation. */
  error?: (m: Msg) => void;
  /** The last seq of an operation changed: persist it to resume later. */
  position?: (operationId: string, lastSeq: number, done: boolean) => void;
  state?: (s: SocketState, info: { code?: number; reason?: string; retryIn?: number }) => void;
}

/**
 * One /ws/agent-guidance connection watching any number of operations.
 * It remembers each operation's last seq and, after every (re)connect,
 * subscribes again with after_seq, so each event arrives exactly once.
 */
export class OperationsClient {
  readonly socket: Socket;
  private tracked = new Map<string, { seq: number; done: boolean }>();

  constructor(token: string, private ev: OperationEvents) {
    this.socket = new Socket(() => wsURL("/ws/agent-guidance"), token, {
      message: (m) => this.onMessage(m),
      state: (s, info) => this.ev.state?.(s, info),
      open: () => {
        for (const [id, t] of this.tracked) if (!t.done) this.subscribeNow(id, t.seq);
      },
    });
  }

  /** Watches an operation from after seq (0: from its start). */
  track(operationId: string, afterSeq = 0, done = false) {
    this.tracked.set(operationId, { seq: afterSeq, done });
    if (!done && this.socket.state === "open") this.subscribeNow(operationId, afterSeq);
  }

  /** Stops watching (the operation keeps running on the server). */
  untrack(operationId: string) {
    this.tracked.delete(operationId);
    this.socket.send({ type: "unsubscribe_operation", operation_id: operationId });
  }

  private subscribeNow(operationId: string, afterSeq: number) {
    this.socket
      .request({ type: "subscribe_operation", operation_id: operationId, after_seq: afterSeq })
      .then((r) => {
        if (r.type === "operation_error") this.ev.error?.(r);
        else if (r.type === "operation_subscribed" && !isLive(r.status) && r.last_seq <= afterSeq) {
          // Ended while we had already seen its final event.
          this.mark(operationId, afterSeq, true);
        }
      })
      .catch(() => {
        /* the connection dropped: open() subscribes again */
      });
  }

  private mark(id: string, seq: number, done: boolean) {
    const t = this.tracked.get(id);
    if (!t) return;
    t.seq = seq;
    t.done = t.done || done;
    this.ev.position?.(id, t.seq, t.done);
  }

  private onMessage(m: Msg) {
    const id = m.operation_id as string | undefined;
    if (m.type === "operation_error") {
      if (m.id === undefined) this.ev.error?.(m);
      return; // replies to requests are handled by their promise too
    }
    if (m.type === "operation_state") {
      const rec = m.operation;
      const t = this.tracked.get(rec.operation_id);
      if (!t) return;
      this.ev.event(m);
      this.mark(rec.operation_id, rec.last_seq, !isLive(rec.status));
      return;
    }
    if (m.type === "agui_event" && m.seq === 0) {
      // The AG-UI state, after operation_state: not a stored event.
      if (id && this.tracked.has(id)) this.ev.event(m);
      return;
    }
    if (!id || typeof m.seq !== "number") return;
    const t = this.tracked.get(id);
    if (!t) {
      if (m.type !== "operation_started") return;
      this.tracked.set(id, { seq: 0, done: false });
    }
    const cur = this.tracked.get(id)!;
    if (m.seq <= cur.seq) return; // seen already
    this.ev.event(m);
    this.mark(id, m.seq, FINAL_EVENTS.has(m.type));
  }

  /** Starts an operation; resolves with operation_started, or rejects with
   * an Error whose message is "<code>: <message>". */
  async start(agentId: string, operationType: string, input: Json): Promise<Msg> {
    const r = await this.socket.request({
      type: "start_operation",
      agent_id: agentId,
      operation_type: operationType,
      input,
    });
    if (r.type !== "operation_started") throw new Error(`${r.code ?? r.type}: ${r.message ?? ""}`);
    return r;
  }

  /** Asks to cancel; the final event arrives through event(). */
  async cancel(operationId: string): Promise<void> {
    const r = await this.socket.request({ type: "cancel_operation", operation_id: operationId });
    if (r.type !== "cancel_requested") throw new Error(`${r.code ?? r.type}: ${r.message ?? ""}`);
  }

  close() {
    this.socket.close();
  }
}

// ---------------------------------------------------------------- messaging

/**
 * A /ws/agent connection. Subscriptions end with a connection, so it
 * subscribes again to every channel after a reconnect.
 */
export class MessagingClient {
  readonly socket: Socket;
  readonly channels = new Set<string>();

  constructor(
    token: string,
    ev: { message: (m: Msg) => void; state?: SocketEvents["state"]; error?: (m: Msg) => void },
  ) {
    this.socket = new Socket(() => wsURL("/ws/agent"), token, {
      message: (m) => {
        if (m.type === "message") ev.message(m);
        else if (m.type === "error" && m.id === undefined) ev.error?.(m);
      },
      state: ev.state,
      open: () => {
        for (const c of this.channels) this.socket.request({ type: "subscribe", channel: c }).catch(() => {});
      },
    });
  }

  async subscribe(channel: string): Promise<void> {
    const r = await this.socket.request({ type: "subscribe", channel });
    if (r.type !== "subscribed") throw new Error(`${r.code}: ${r.message}`);
    this.channels.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.channels.delete(channel);
    await this.socket.request({ type: "unsubscribe", channel }).catch(() => {});
  }

  async publish(channel: string, data: Json): Promise<number> {
    const r = await this.socket.request({ type: "publish", channel, data });
    if (r.type !== "published") throw new Error(`${r.code}: ${r.message}`);
    return r.seq;
  }

  close() {
    this.socket.close();
  }
}
