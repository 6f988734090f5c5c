// Test harness of the console's browser tests: builds and starts a real
// `tether serve --dev` on a free port with a temp data dir and a config
// declaring test agents, puts a TCP proxy in front of it (so that a test can
// cut the browser's connections, as a network drop would), and launches
// Debian's headless Chromium through playwright-core.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repo = path.resolve(here, "../..");
export const outDir = path.join(repo, "test-output");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

/** Resolves the value of fn() once truthy, polling; fails after ms. */
export async function until(what, fn, ms = 10000, every = 50) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let binary;
function buildTether() {
  if (binary) return binary;
  // TETHER_BIN: a tether binary built beforehand (with the console embedded).
  if (process.env.TETHER_BIN) return (binary = process.env.TETHER_BIN);
  if (!existsSync(path.join(repo, "internal/webui/dist/console/index.html"))) {
    throw new Error("the console is not built: run `make web` (or `npm run build` in web/) first");
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "tether-e2e-bin-"));
  binary = path.join(dir, "tether");
  execFileSync("go", ["build", "-o", binary, "./cmd/tether"], {
    cwd: repo,
    stdio: "inherit",
    env: { ...process.env, GOTOOLCHAIN: "local" },
    timeout: 300_000,
  });
  return binary;
}

/** A TCP proxy whose connections a test can cut. */
async function startProxy(targetPort) {
  const port = await freePort();
  const sockets = new Set();
  let refuseUntil = 0;
  const server = net.createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return {
    port,
    /** Drops every open connection and refuses new ones for ms. */
    cut(ms = 0) {
      refuseUntil = Date.now() + ms;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}

/** Starts tether serve --dev with test agents, and a proxy in front. */
/** Starts `tether serve --dev` with the test agents; extraArgs are added to its flags. */
export async function startServer(extraArgs = []) {
  const bin = buildTether();
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "tether-e2e-data-"));
  const cfg = path.join(dataDir, "tether.yaml");
  const script = path.join(here, "testdata", "steps.sh");
  const chat = path.join(repo, "examples", "agents", "chat.py");
  // The same interactive agent the Go tests use.
  const ask = path.join(repo, "internal", "operations", "testdata", "ask.py");
  writeFileSync(
    cfg,
    `agents:
  - id: tester
    operations:
      steps:
        command: ["sh", "${script}"]
        env: {DELAY: "0.25"}
        timeout: 1m
      slow:
        command: ["sh", "${script}"]
        env: {DELAY: "1"}
        timeout: 2m
      chat:
        command: ["python3", "${chat}"]
        env: {TOKENS_PER_SEC: "40"}
        timeout: 1m
      ask:
        command: ["python3", "${ask}"]
        interactive: true
        timeout: 1m
`,
  );
  const args = ["serve", "--dev", "--addr", `127.0.0.1:${port}`, "--data-dir", dataDir, "--config", cfg, "--node-name", "e2e", "--log-level", "warn", ...extraArgs];
  const proc = spawn(bin, args, { cwd: dataDir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, SHELL: "/bin/sh", PS1: "$ " } });
  let logs = "";
  proc.stdout.on("data", (d) => (logs += d));
  proc.stderr.on("data", (d) => (logs += d));
  const direct = `http://127.0.0.1:${port}`;
  await until("tether to be ready", async () => (await fetch(direct + "/readyz")).ok, 30000, 100);
  const tok = await (await fetch(direct + "/api/dev/token")).json();
  const proxy = await startProxy(port);
  return {
    url: `http://127.0.0.1:${proxy.port}`,
    direct,
    token: tok.token,
    proxy,
    logs: () => logs,
    /** Calls the REST API directly (not through the proxy). */
    async api(method, p, body) {
      const res = await fetch(direct + p, {
        method,
        headers: { Authorization: "Bearer " + tok.token, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    async stop() {
      await proxy.close();
      proc.kill("SIGTERM");
      await Promise.race([new Promise((r) => proc.once("exit", r)), new Promise((r) => setTimeout(r, 10000))]);
      if (proc.exitCode === null) proc.kill("SIGKILL");
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-quic",
      // No --user-data-dir: launch() gives Chromium a fresh temporary
      // profile of its own and deletes it on close.
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}

/** A fresh page that records console errors and uncaught exceptions. */
export async function newPage(browser, opts = {}) {
  const context = await browser.newContext({
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    colorScheme: opts.colorScheme ?? "light",
    acceptDownloads: true,
  });
  context.setDefaultTimeout(10000);
  context.setDefaultNavigationTimeout(15000);
  const page = await context.newPage();
  const errors = [];
  // While a test provokes failures on purpose (cutting the network,
  // using a bad token), Chromium itself logs the failed requests as console
  // errors; those, and only those, are tolerated meanwhile.
  let tolerate = null;
  const tolerated = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const text = m.text();
    if (tolerate && tolerate.test(text)) {
      tolerated.push(text);
      return;
    }
    errors.push(`console.error: ${text}`);
  });
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  return {
    page,
    context,
    errors,
    async screenshot(name) {
      mkdirSync(outDir, { recursive: true });
      await page.screenshot({ path: path.join(outDir, name + ".png"), fullPage: false });
    },
    /** Runs fn while tolerating console errors matching re. */
    async tolerating(re, fn) {
      tolerate = re;
      try {
        return await fn();
      } finally {
        tolerate = null;
      }
    },
    /** Runs fn while tolerating the browser's own network errors. */
    duringNetworkCut(fn) {
      // A WebSocket dialled while the proxy drops connections fails as
      // "net::ERR_…" or, when the TCP connection opened and was then cut,
      // "Connection closed before receiving a handshake response".
      return this.tolerating(/net::ERR_(CONNECTION_RESET|CONNECTION_REFUSED|CONNECTION_CLOSED|SOCKET_NOT_CONNECTED|EMPTY_RESPONSE)|Connection closed before receiving a handshake response/, fn);
    },
    tolerated,
    assertNoErrors() {
      assert.deepEqual(errors, [], "errors in the page");
    },
  };
}

/** The text currently shown by the xterm.js terminal. */
export async function terminalText(page) {
  return page.locator('[data-testid="terminal"] .xterm-rows').innerText();
}

export function count(haystack, needle) {
  return haystack.split(needle).length - 1;
}

// ---- the operations view

/** Waits until the operations view has the list from the server. */
export async function operationsListed(page) {
  await until("the list of operations", async () => (await page.getByTestId("op-cards").getAttribute("aria-busy")) === null);
}

/** The operation ids of the cards, top first. */
export const cardIds = (page) => page.getByTestId("op-card").evaluateAll((els) => els.map((e) => e.dataset.id));

/** Starts an operation of the test agent from the form; returns its card. */
export async function startOperation(page, type, input = '{"n": 1}') {
  await operationsListed(page);
  await page.getByTestId("op-agent").fill("tester");
  await page.getByTestId("op-type").fill(type);
  await page.getByTestId("op-input").fill(input);
  const before = new Set(await cardIds(page));
  await page.getByTestId("op-start").click();
  const id = await until("a new card", async () => {
    const id = (await cardIds(page)).find((i) => !before.has(i));
    if (id) return id;
    // The form's error, if any, is what the failure should say.
    const err = await page.getByTestId("op-error").textContent();
    if (err) throw new Error(`the form says: ${err}`);
  });
  // Newest first: the new card is on top.
  assert.equal((await cardIds(page))[0], id);
  return page.locator(`[data-testid="op-card"][data-id="${id}"]`);
}

/** The progress a card shows, in percent (-1: none). */
export const pct = async (card) => parseInt((await card.getByTestId("op-progress").textContent()) || "-1", 10);
