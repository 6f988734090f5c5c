// The console's shell: sign-in, navigation, and the three views.
import "@xterm/xterm/css/xterm.css";
import "./style.css";
import { h, clear } from "./dom";
import { api, ApiError, tokenInfo, type TokenInfo } from "./tether";
import type { Session, View } from "./session";
import { milestonesView } from "./milestones";
import { operationsView } from "./operations";
import { messagesView } from "./messages";

const TOKEN_KEY = "tether.token";
const SIGNED_OUT_KEY = "tether.signedOut";

const views: Record<string, { title: string; view: View }> = {
  milestones: { title: "Milestones", view: milestonesView },
  operations: { title: "Operations", view: operationsView },
  messages: { title: "Messages", view: messagesView },
};

const app = document.getElementById("app")!;
let cleanup: (() => void) | null = null;
let session: Session | null = null;

function sessionFrom(token: string): Session | null {
  const info = tokenInfo(token);
  if (!info) return null;
  return { token, info, admin: info.roles.includes("admin") };
}

function expired(info: TokenInfo): boolean {
  return info.exp !== undefined && info.exp * 1000 < Date.now();
}

async function devToken(): Promise<string | null> {
  // Exists only under `tether serve --dev`, and answers only pages opened
  // from the same machine (see docs/console.md).
  try {
    const res = await fetch("/api/dev/token", { cache: "no-store" });
    if (!res.ok) return null;
    const body = (await res.json()) as { token?: string };
    return body.token ?? null;
  } catch {
    return null;
  }
}

async function boot() {
  const stored = sessionStorage.getItem(TOKEN_KEY);
  let s = stored ? sessionFrom(stored) : null;
  if (s && expired(s.info)) s = null;
  if (!s && !sessionStorage.getItem(SIGNED_OUT_KEY)) {
    const t = await devToken();
    if (t) s = sessionFrom(t);
  }
  if (s) signIn(s);
  else signInPage();
}

let expiryTimer: ReturnType<typeof setTimeout> | undefined;

function signIn(s: Session) {
  session = s;
  clearTimeout(expiryTimer);
  if (s.info.exp !== undefined) {
    // The server closes connections at exp; ask for a new token then.
    const ms = s.info.exp * 1000 - Date.now();
    if (ms < 2 ** 31 - 1) {
      expiryTimer = setTimeout(() => window.dispatchEvent(new CustomEvent("tether:unauthorized")), Math.max(ms, 0));
    }
  }
  sessionStorage.setItem(TOKEN_KEY, s.token);
  sessionStorage.removeItem(SIGNED_OUT_KEY);
  shell();
  // A WebSocket refused at the handshake only says "failed" to a page, so
  // check the token once over REST, where a refusal has a status.
  api(s.token, "GET", "/api/milestones?status=running").catch((e) => {
    if (e instanceof ApiError && e.status === 401 && session === s) {
      window.dispatchEvent(new CustomEvent("tether:unauthorized"));
    }
  });
}

function signOut() {
  clearTimeout(expiryTimer);
  cleanup?.();
  cleanup = null;
  session = null;
  for (const k of Object.keys(sessionStorage)) if (k.startsWith("tether.")) sessionStorage.removeItem(k);
  sessionStorage.setItem(SIGNED_OUT_KEY, "1");
  location.hash = "";
  signInPage();
}

function signInPage(error?: string) {
  cleanup?.();
  cleanup = null;
  clear(app);
  const ta = h("textarea", {
    id: "token",
    testid: "token-input",
    rows: 5,
    spellcheck: "false",
    autocomplete: "off",
    placeholder: "eyJhbGciOi…",
    "aria-label": "Token",
  });
  const err = h("p.form-error", { testid: "signin-error", role: "alert" }, error ?? "");
  const form = h(
    "form.card.signin",
    {
      onsubmit: (e: Event) => {
        e.preventDefault();
        const t = ta.value.trim().replace(/^Bearer\s+/i, "");
        const s = sessionFrom(t);
        if (!s) {
          err.textContent = "That is not a JWT (three base64url parts separated by dots).";
          return;
        }
        if (expired(s.info)) {
          err.textContent = "This token has expired.";
          return;
        }
        signIn(s);
      },
    },
    h("div.brand.big", {}, logo(), h("span", {}, "Tether")),
    h("h1", {}, "Sign in to the console"),
    h(
      "p.muted",
      {},
      "Paste a token. It is kept in this tab only (sessionStorage) and sent over WebSockets as a subprotocol, never in a URL. ",
      "Mint one with ",
      h("code", {}, "./tether token --sub you --roles admin"),
      ".",
    ),
    h("label", { for: "token" }, "Token"),
    ta,
    err,
    h("button.primary", { type: "submit", testid: "signin" }, "Sign in"),
  );
  app.appendChild(h("main.signin-page", {}, form));
  ta.focus();
}

function logo() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 32 32");
  svg.setAttribute("class", "logo");
  svg.setAttribute("aria-hidden", "true");
  svg.innerHTML =
    '<rect width="32" height="32" rx="7" fill="currentColor"/><path d="M9 10h14M16 10v13" stroke="var(--bg)" stroke-width="3.5" stroke-linecap="round"/>';
  return svg;
}

function route(): { name: string; arg?: string } {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const name = views[parts[0]] ? parts[0] : "milestones";
  const arg = parts[1] ? decodeURIComponent(parts.slice(1).join("/")) : undefined;
  return { name, arg };
}

let content: HTMLElement;
let nav: HTMLElement;
let current = "";

function shell() {
  clear(app);
  const s = session!;
  nav = h("nav.tabs", { "aria-label": "Sections" });
  for (const [name, v] of Object.entries(views)) {
    nav.appendChild(h("a.tab", { href: `#/${name}`, testid: `tab-${name}`, "data-view": name }, v.title));
  }
  const user = h(
    "div.user",
    {},
    h("span.avatar", { "aria-hidden": "true" }, s.info.sub.slice(0, 1).toUpperCase()),
    h("span.user-name", { testid: "user" }, s.info.sub),
    s.admin ? h("span.badge", {}, "admin") : null,
    h("button.ghost.small", { testid: "signout", onclick: signOut }, "Sign out"),
  );
  content = h("main.content", { id: "content" });
  app.appendChild(h("header.topbar", {}, h("div.brand", {}, logo(), h("span", {}, "Tether")), nav, user));
  app.appendChild(content);
  current = "";
  render();
}

function render() {
  if (!session) return;
  const r = route();
  const key = r.name + "/" + (r.arg ?? "");
  if (key === current) return;
  const sameView = current.split("/")[0] === r.name;
  current = key;
  for (const a of nav.querySelectorAll<HTMLAnchorElement>("a.tab")) {
    a.classList.toggle("active", a.dataset.view === r.name);
    if (a.dataset.view === r.name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (sameView && r.name === "milestones") {
    // The milestones view follows its own hash changes (opening one).
    window.dispatchEvent(new CustomEvent("tether:milestone", { detail: r.arg }));
    return;
  }
  cleanup?.();
  clear(content);
  cleanup = views[r.name].view(content, session, r.arg);
}

window.addEventListener("hashchange", render);
window.addEventListener("tether:unauthorized", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  signInPage("The server refused the token (expired or invalid). Paste a new one.");
});
void boot();
