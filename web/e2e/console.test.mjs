// End-to-end tests of the web console in real headless Chromium against a
// real `tether serve --dev` (see harness.mjs). Run: make test-web.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startServer, launchBrowser, newPage, terminalText, until, count, startOperation, operationsListed, pct } from "./harness.mjs";

let srv;
let chrome;

before(async () => {
  srv = await startServer();
  chrome = await launchBrowser();
});

after(async () => {
  await chrome?.close();
  await srv?.stop();
});

/** Opens the console signed in (automatically, as --dev does). */
async function openConsole(hash = "", opts) {
  const p = await newPage(chrome.browser, opts);
  await p.page.goto(srv.url + "/" + hash);
  await p.page.getByTestId("user").waitFor({ state: "attached" });
  return p;
}

async function typeInTerminal(page, text) {
  await page.locator('[data-testid="terminal"] .xterm').click();
  await page.keyboard.type(text, { delay: 5 });
}

test("signs in automatically in --dev mode, and by pasting a token", async () => {
  const p = await openConsole();
  const { page } = p;
  assert.equal(await page.getByTestId("user").textContent(), "dev");
  await page.getByTestId("signout").click();
  await page.getByTestId("token-input").waitFor();
  await p.screenshot("signin");
  // Signed out stays signed out on reload, even in --dev mode.
  await page.reload();
  await page.getByTestId("token-input").waitFor();
  await page.getByTestId("token-input").fill("not a token");
  await page.getByTestId("signin").click();
  await until("the error", async () => (await page.getByTestId("signin-error").textContent()).includes("not a JWT"));
  // A well-formed token with a bad signature: refused by the server.
  const forged = srv.token.split(".").slice(0, 2).join(".") + "." + "A".repeat(43);
  await p.tolerating(/status of 401|WebSocket connection to .* failed/, async () => {
    await page.getByTestId("token-input").fill(forged);
    await page.getByTestId("signin").click();
    await until("the refusal", async () => (await page.getByTestId("signin-error").textContent()).includes("refused"));
  });
  await page.getByTestId("token-input").fill(srv.token);
  await page.getByTestId("signin").click();
  await page.getByTestId("user").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("tether.token")), srv.token);
  // The token is never in a URL.
  assert.ok(!page.url().includes(srv.token.slice(0, 20)));
  await p.screenshot("signed-in");
  p.assertNoErrors();
  await p.context.close();
});

test("a milestone's terminal: create it, type `echo hello`, see it", async () => {
  const p = await openConsole("#/milestones");
  const { page } = p;
  await page.getByTestId("ms-new").click();
  await page.getByTestId("ms-name").fill("e2e shell");
  await page.getByTestId("ms-command").fill("sh");
  await page.getByTestId("ms-submit").click();
  await until("the terminal to connect", async () => (await page.getByTestId("term-indicator").getAttribute("data-state")) === "open");
  await until("a prompt", async () => /[$#] *$/m.test(await terminalText(page)));
  await typeInTerminal(page, 'echo hel""lo\n');
  await until("hello", async () => /^hello\s*$/m.test(await terminalText(page)));
  await until("the list to show it running", async () =>
    (await page.locator('[data-testid="milestone-item"][aria-current="true"] [data-testid="milestone-status"]').textContent()) === "running",
  );
  await p.screenshot("terminal");
  // The terminal fits its pane and tells the program its size, and again
  // when the window changes.
  const sttySize = async (marker) => {
    await typeInTerminal(page, `echo ${marker}-$(stty size)\n`);
    const m = await until(`the size (${marker})`, async () => new RegExp(`^${marker}-(\\d+) (\\d+)`, "m").exec(await terminalText(page)));
    return { rows: +m[1], cols: +m[2] };
  };
  const big = await sttySize("big");
  assert.ok(big.cols > 100 && big.rows > 30, `size at 1280x800: ${JSON.stringify(big)}`);
  await page.setViewportSize({ width: 900, height: 600 });
  await page.waitForTimeout(400);
  const small = await sttySize("small");
  assert.ok(small.cols < big.cols && small.rows < big.rows, `after shrinking: ${JSON.stringify(small)} vs ${JSON.stringify(big)}`);
  p.assertNoErrors();
  await p.context.close();
});

test("the terminal comes back after a network drop, output intact and exactly once; exit code; recording", async () => {
  const ms = await srv.api("POST", "/api/milestones", { name: "drop test", command: ["sh"] });
  const p = await openConsole(`#/milestones/${ms.id}`);
  const { page } = p;
  const state = () => page.getByTestId("term-indicator").getAttribute("data-state");
  await until("the terminal to connect", async () => (await state()) === "open");
  await until("a prompt", async () => /[$#] *$/m.test(await terminalText(page)));
  await typeInTerminal(page, "echo one-$((20+22))\n");
  await until("one-42", async () => (await terminalText(page)).includes("one-42"));
  // Output printed while the browser is cut off.
  await typeInTerminal(page, "sleep 1; echo two-$((40+3))\n");
  await until("the input to be echoed", async () => (await terminalText(page)).includes("sleep 1;"));
  await p.duringNetworkCut(async () => {
    srv.proxy.cut(2500);
    await until("the indicator to show the drop", async () => (await state()) === "reconnecting", 5000);
    await p.screenshot("terminal-reconnecting");
    await until("the terminal to reconnect", async () => (await state()) === "open", 15000);
  });
  await until("two-43", async () => (await terminalText(page)).includes("two-43"), 10000);
  const text = await terminalText(page);
  assert.equal(count(text, "one-42"), 1, text);
  assert.equal(count(text, "two-43"), 1, text);
  assert.equal(count(text, "echo one-"), 1, text);
  // Still interactive after the resume.
  await typeInTerminal(page, "exit 3\n");
  await until("the exit code", async () => (await page.getByTestId("term-exit").textContent()).includes("code 3"));
  await p.screenshot("terminal-exited");
  const [dl] = await Promise.all([page.waitForEvent("download", { timeout: 10000 }), page.getByTestId("term-download").click()]);
  assert.equal(dl.suggestedFilename(), `${ms.id}.cast`);
  const chunks = [];
  for await (const c of await dl.createReadStream()) chunks.push(c);
  const cast = Buffer.concat(chunks).toString();
  assert.match(cast.split("\n")[0], /"version":\s*2/);
  assert.ok(cast.includes("one-42"));
  p.assertNoErrors();
  await p.context.close();
});

test("terminal queries in replayed output are not answered into the program", async () => {
  // The program asks the terminal for its attributes (DA) while nobody is
  // attached, then reads a line. Attaching replays the query; xterm.js
  // answers it, and that answer must not become the program's input.
  const ms = await srv.api("POST", "/api/milestones", {
    name: "replayed query",
    command: ["sh", "-c", `printf 'asking\\033[c\\n'; read -r line; printf 'got:[%s]\\n' "$line" | od -c | head -3; sleep 30`],
  });
  await srv.api("POST", `/api/milestones/${ms.id}/start`);
  await new Promise((r) => setTimeout(r, 300));
  const p = await openConsole(`#/milestones/${ms.id}`);
  const { page } = p;
  await until("the replay", async () => (await terminalText(page)).includes("asking"));
  await page.waitForTimeout(300);
  await typeInTerminal(page, "ok\n");
  await until("the program's answer", async () => (await terminalText(page)).includes("]"), 5000);
  const text = await terminalText(page);
  // od -c shows exactly what the program read: g o t : [ o k ].
  assert.match(text, /g\s+o\s+t\s+:\s+\[\s+o\s+k\s+\]/, text);
  assert.ok(!text.includes("033"), text);
  await p.screenshot("terminal-replayed-query");
  p.assertNoErrors();
  await p.context.close();
});

test("reloading the console during a long-running full-screen program shows the live screen", async () => {
  // A header drawn once, then over 1 MiB (the ring) of cursor-addressed,
  // coloured updates all over the screen inside a scroll region, as top or
  // htop print, then a last frame and a wait: a replay of the ring alone
  // would lack the header.
  const script = [
    `printf '\\033]2;e2e top\\007\\033[?1049h\\033[2J\\033[22;1Ha header drawn once\\033[3;20r'`,
    "i=0",
    "while [ $i -lt 60000 ]; do printf '\\033[%d;%dH\\033[3%dm%05d\\033[0m' $((i % 18 + 3)) $((i % 60 + 1)) $((i % 8)) $i; i=$((i+1)); done",
    "printf '\\033[1;1HDONE \\033[1mframe\\033[0m'",
    "read -r line; printf '\\033[2;1Hgot %s' \"$line\"; sleep 60",
  ].join("\n");
  const ms = await srv.api("POST", "/api/milestones", { name: "full screen", command: ["sh", "-c", script] });
  const p = await openConsole(`#/milestones/${ms.id}`);
  const { page } = p;
  // What the terminal shows, row by row, without trailing blanks.
  const screen = async () =>
    (await page.locator('[data-testid="terminal"] .xterm-rows > div').allTextContents())
      .map((l) => l.replace(/\u00a0/g, " ").trimEnd())
      .join("\n")
      .trimEnd();
  await until("the last frame", async () => (await screen()).includes("DONE frame"), 60000);
  // Settled: the program is waiting for input.
  let last = "";
  await until("the output to settle", async () => {
    const now = await screen();
    const ok = now === last;
    last = now;
    return ok;
  }, 20000, 500);
  assert.ok(last.includes("a header drawn once"));
  const live = await screen();
  await page.reload();
  await until("the terminal to reconnect", async () => (await page.getByTestId("term-indicator").getAttribute("data-state")) === "open");
  await until("the screen after the reload", async () => (await screen()) === live, 15000).catch(async (e) => {
    assert.equal(await screen(), live, String(e));
  });
  // The server's screen API shows the same, after more than the ring.
  const api = await srv.api("GET", `/api/milestones/${ms.id}/screen`);
  assert.ok(api.offset > 1 << 20, `only ${api.offset} bytes of output`);
  const apiText = api.lines
    .map((runs) => runs.map((r) => r.text).join("").trimEnd())
    .join("\n")
    .trimEnd();
  assert.equal(apiText, live);
  assert.equal(api.title, "e2e top");
  assert.equal(api.alternate_screen, true);
  // Live output continues after the reload.
  await typeInTerminal(page, "hi\n");
  await until("the answer", async () => (await screen()).includes("got hi"));
  p.assertNoErrors();
  await p.context.close();
});

test("reloading the console during a real htop, past the ring, shows htop's screen", async (t) => {
  if (spawnSync("sh", ["-c", "command -v htop"]).status !== 0) return t.skip("htop is not installed");
  // A small ring, so that htop's partial redraws pass it in seconds.
  const s2 = await startServer(["--terminal-ring-size", "32KiB"]);
  try {
    const stop = path.join(os.tmpdir(), `tether-e2e-htop-${process.pid}-${Date.now()}`);
    // htop runs until the test has seen its output pass the ring, then is
    // stopped (SIGSTOP) so that the screens can be compared.
    const script = `htop -d 2 </dev/tty & pid=$!; until [ -e "$1" ]; do sleep 0.1; done; kill -STOP $pid; wait $pid`;
    const ms = await s2.api("POST", "/api/milestones", { name: "htop", command: ["sh", "-c", script, "sh", stop] });
    const p = await newPage(chrome.browser);
    const { page } = p;
    await page.goto(s2.url + `/#/milestones/${ms.id}`);
    await page.getByTestId("user").waitFor({ state: "attached" });
    const screen = async () =>
      (await page.locator('[data-testid="terminal"] .xterm-rows > div').allTextContents())
        .map((l) => l.replace(/\u00a0/g, " ").trimEnd())
        .join("\n")
        .trimEnd();
    await until("htop's screen", async () => /Tasks:/.test(await screen()), 20000);
    await until("htop's output to pass the ring three times", async () => (await s2.api("GET", `/api/milestones/${ms.id}/screen`)).offset > 3 * 32768, 60000, 200);
    writeFileSync(stop, "");
    let last = "";
    await until("htop to stop and its screen to settle", async () => {
      const now = await screen();
      const ok = now === last && /Tasks:/.test(now);
      last = now;
      return ok;
    }, 20000, 700);
    rmSync(stop, { force: true });
    await page.reload();
    await until("the terminal to reconnect", async () => (await page.getByTestId("term-indicator").getAttribute("data-state")) === "open");
    await until("htop's screen after the reload", async () => (await screen()) === last, 15000).catch(async (e) => {
      assert.equal(await screen(), last, String(e));
    });
    // The server's screen API shows the same.
    const api = await s2.api("GET", `/api/milestones/${ms.id}/screen`);
    const apiText = api.lines.map((runs) => runs.map((r) => r.text).join("").trimEnd()).join("\n").trimEnd();
    assert.equal(apiText, last);
    assert.equal(api.alternate_screen, true);
    p.assertNoErrors();
    await p.context.close();
  } finally {
    await s2.stop();
  }
});

test("an operation runs to completion with its progress bar moving", async () => {
  const p = await openConsole("#/operations");
  const { page } = p;
  const card = await startOperation(page, "steps", '{"n": 1}');
  const seen = new Set();
  let shot = false;
  await until(
    "completion",
    async () => {
      seen.add(await pct(card));
      if (!shot && (await pct(card)) >= 40) {
        shot = true;
        await p.screenshot("operation-running");
      }
      return (await card.getAttribute("data-status")) === "completed";
    },
    15000,
    30,
  );
  assert.ok([...seen].filter((v) => v > 0 && v < 100).length >= 3, `progress values seen: ${[...seen]}`);
  assert.equal(await pct(card), 100);
  assert.match(await card.getByTestId("op-result").textContent(), /"ok": true/);
  assert.equal(count(await card.getByTestId("op-log").textContent(), "log line at"), 6);
  await p.screenshot("operation-completed");
  p.assertNoErrors();
  await p.context.close();
});

test("an operation started while the connection is reopening starts once it is back", async () => {
  const p = await openConsole("#/operations");
  const { page } = p;
  const state = () => page.getByTestId("ops-indicator").getAttribute("data-state");
  await operationsListed(page);
  await until("the connection", async () => (await state()) === "open");
  const card = await p.duringNetworkCut(async () => {
    srv.proxy.cut(1500);
    await until("the indicator to show the drop", async () => (await state()) === "reconnecting", 5000);
    // Clicked while no connection is open: the request waits for one.
    const card = await startOperation(page, "steps", '{"n": 1}');
    assert.equal(await state(), "open");
    return card;
  });
  await until("completion", async () => (await card.getAttribute("data-status")) === "completed", 15000);
  assert.equal(await page.getByTestId("op-error").textContent(), "");
  p.assertNoErrors();
  await p.context.close();
});

test("an operation can be cancelled", async () => {
  const p = await openConsole("#/operations");
  const { page } = p;
  const card = await startOperation(page, "slow");
  await until("some progress", async () => (await pct(card)) >= 10, 10000);
  await card.getByTestId("op-cancel").click();
  await until("cancelled", async () => (await card.getAttribute("data-status")) === "cancelled", 15000);
  assert.equal(await card.getByTestId("op-status").textContent(), "cancelled");
  assert.ok(await card.getByTestId("op-cancel").isHidden());
  await p.screenshot("operation-cancelled");
  p.assertNoErrors();
  await p.context.close();
});

test("reloading the page resumes an operation's card where it was", async () => {
  const p = await openConsole("#/operations");
  const { page } = p;
  const card = await startOperation(page, "slow", '{"reload": true}');
  const id = await card.getAttribute("data-id");
  await until("progress 20%", async () => (await pct(card)) >= 20, 10000);
  const beforeReload = await pct(card);
  await page.reload();
  const again = page.locator(`[data-testid="op-card"][data-id="${id}"]`);
  await again.waitFor();
  // Restored at once from sessionStorage, then live again.
  assert.ok((await pct(again)) >= beforeReload);
  await until("more progress after the reload", async () => (await pct(again)) > beforeReload + 10, 10000);
  await p.screenshot("operation-resumed");
  await until("completion", async () => (await again.getAttribute("data-status")) === "completed", 15000);
  const log = await again.getByTestId("op-log").textContent();
  for (const n of [0, 20, 40, 60, 80, 100]) assert.equal(count(log, `log line at ${n}%`), 1, log);
  assert.match(await again.getByTestId("op-result").textContent(), /"reload": true/);
  p.assertNoErrors();
  await p.context.close();
});

test("messages: subscribe, receive a message published by a backend, publish one", async () => {
  const p = await openConsole("#/messages");
  const { page } = p;
  await page.getByTestId("sub-channel").fill("room:e2e");
  await page.getByTestId("sub-submit").click();
  await page.getByTestId("channel-chip").filter({ hasText: "room:e2e" }).waitFor();
  await srv.api("POST", "/api/publish", { channel: "room:e2e", data: { text: "from the backend" } });
  await page.getByTestId("message").filter({ hasText: "from the backend" }).waitFor();
  await page.getByTestId("pub-channel").fill("room:e2e");
  await page.getByTestId("pub-data").fill('{"text": "from the console"}');
  await page.getByTestId("pub-submit").click();
  await page.getByTestId("message").filter({ hasText: "from the console" }).waitFor();
  await p.screenshot("messages");
  p.assertNoErrors();
  await p.context.close();
});

test("looks right at phone width and in dark mode", async () => {
  for (const [name, opts] of [
    ["phone-operations", { viewport: { width: 390, height: 844 }, colorScheme: "light" }],
    ["dark-operations", { viewport: { width: 1280, height: 800 }, colorScheme: "dark" }],
  ]) {
    const p = await openConsole("#/operations", opts);
    const card = await startOperation(p.page, "steps", '{"look": 1}');
    await until("completion", async () => (await card.getAttribute("data-status")) === "completed", 15000);
    await p.screenshot(name);
    await p.page.goto(srv.url + "/#/milestones");
    await p.page.getByTestId("milestone-item").first().click();
    await p.page.getByTestId("terminal").waitFor();
    await p.page.waitForTimeout(500);
    await p.screenshot(name.replace("operations", "milestones"));
    const overflow = await p.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name}: the page scrolls sideways by ${overflow}px`);
    p.assertNoErrors();
    await p.context.close();
  }
});

test("an AG-UI agent's card streams its text, shows the tool call and the state; an input request is answered from the card", async () => {
  const p = await openConsole("#/operations");
  const { page } = p;
  const card = await startOperation(page, "chat", '{"messages": [{"id": "u1", "role": "user", "content": "tether"}]}');
  // The text grows while the agent streams it.
  const lengths = new Set();
  await until(
    "the answer",
    async () => {
      const texts = await card.getByTestId("op-text").allTextContents();
      lengths.add(texts.join("").length);
      return (await card.getAttribute("data-status")) === "completed";
    },
    20000,
    30,
  );
  assert.ok(lengths.size >= 5, `text lengths seen: ${[...lengths]}`);
  const texts = await card.getByTestId("op-text").allTextContents();
  assert.deepEqual(texts, [
    "assistant Let me look that up before I answer.",
    "assistant You asked about tether. I found 2 results: Tether stores every event; AG-UI clients resume with Last-Event-ID.",
  ]);
  assert.equal(await card.getByTestId("op-tool-args").textContent(), '({"query": "tether"})');
  assert.match(await card.getByTestId("op-tool-result").textContent(), /Tether stores every event/);
  const state = card.getByTestId("op-state");
  assert.match(await state.textContent(), /question: "tether"/);
  assert.match(await state.textContent(), /searches: 1/);
  await p.screenshot("operation-agui");

  const asking = await startOperation(page, "ask", "null");
  await until("the request", async () => (await asking.getAttribute("data-status")) === "waiting_input", 10000);
  assert.match(await asking.getByTestId("op-input-form").textContent(), /Send the email\?/);
  await p.screenshot("operation-input");
  await asking.getByTestId("op-input-yes").click();
  await until("completion", async () => (await asking.getAttribute("data-status")) === "completed", 10000);
  assert.match(await asking.getByTestId("op-input-answered").textContent(), /Send the email\? → true \(resolved, /);
  assert.match(await asking.getByTestId("op-result").textContent(), /"value": true/);
  p.assertNoErrors();
  await p.context.close();
});
