// Browser tests of the console's lists: the operations the server knows
// of (not only those started in the tab) and the milestone list's loading
// and error states. A file of its own, with its own server: each file of
// e2e/ has its own time budget (see the Makefile).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, newPage, until, count, operationsListed, cardIds, pct } from "./harness.mjs";

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

async function openConsole(hash = "") {
  const p = await newPage(chrome.browser);
  await p.page.goto(srv.url + "/" + hash);
  await p.page.getByTestId("user").waitFor({ state: "attached" });
  return p;
}

test("the operations list shows operations started elsewhere, and not the dismissed", async () => {
  const p = await openConsole("#/operations");
  const { page } = p;
  await operationsListed(page);
  // Started by another client, through the REST API.
  const running = await srv.api("POST", "/api/operations", { agent_id: "tester", operation_type: "slow", input: { elsewhere: true } });
  await page.reload();
  const card = page.locator(`[data-testid="op-card"][data-id="${running.operation_id}"]`);
  await card.waitFor();
  assert.equal(await card.getAttribute("data-status"), "running");
  // Replayed from its start, then live: each log line once.
  await until("progress 20%", async () => (await pct(card)) >= 20, 10000);
  await until("its log", async () => (await card.getByTestId("op-log").textContent()).includes("log line at 20%"));
  const log = await card.getByTestId("op-log").textContent();
  for (const n of [0, 20]) assert.equal(count(log, `log line at ${n}%`), 1, log);
  await p.screenshot("operation-from-elsewhere");
  await card.getByTestId("op-cancel").click();
  await until("cancelled", async () => (await card.getAttribute("data-status")) === "cancelled", 15000);

  // One that ended before the page was opened: shown from its record.
  const ended = await srv.api("POST", "/api/operations", { agent_id: "tester", operation_type: "steps", input: { ended: true } });
  await until("the operation to complete", async () => (await srv.api("GET", `/api/operations/${ended.operation_id}`)).status === "completed", 15000);
  await page.reload();
  const endedCard = page.locator(`[data-testid="op-card"][data-id="${ended.operation_id}"]`);
  await endedCard.waitFor();
  assert.equal(await endedCard.getAttribute("data-status"), "completed");
  assert.equal(await pct(endedCard), 100);
  assert.match(await endedCard.getByTestId("op-result").textContent(), /"ended": true/);
  // Newest first.
  const ids = await cardIds(page);
  assert.ok(ids.indexOf(ended.operation_id) < ids.indexOf(running.operation_id), ids.join(" "));

  // A dismissed card stays dismissed across reloads.
  await endedCard.getByTestId("op-dismiss").click();
  await page.reload();
  await operationsListed(page);
  await card.waitFor();
  assert.equal(await endedCard.count(), 0);
  p.assertNoErrors();
  await p.context.close();
});

test("the milestone list says it is loading, and when loading fails", async () => {
  await srv.api("POST", "/api/milestones", { name: "listed", command: ["sh"] });
  const p = await newPage(chrome.browser);
  const { page } = p;
  // Hold the list's first answer back, then fail the next ones.
  let release;
  const held = new Promise((r) => (release = r));
  let calls = 0;
  await page.route(
    (u) => u.pathname === "/api/milestones" && u.search === "",
    async (route) => {
      calls++;
      if (calls === 1) {
        await held;
        return route.continue();
      }
      return route.fulfill({ status: 503, contentType: "application/json", body: '{"error":"unavailable","message":"try later"}' });
    },
  );
  await page.goto(srv.url + "/#/milestones");
  await page.getByTestId("milestones-empty").waitFor();
  assert.equal(await page.getByTestId("milestones-empty").textContent(), "Loading…");
  assert.equal(await page.getByTestId("milestone-item").count(), 0);
  release();
  await page.getByTestId("milestone-item").first().waitFor();
  assert.ok(await page.getByTestId("milestones-empty").isHidden());
  // A failed refresh is said, and the list stays.
  await p.tolerating(/status of 503/, async () => {
    await until("the error", async () => (await page.getByTestId("milestones-error").textContent()).includes("Could not refresh the milestones: try later"), 10000);
    assert.ok((await page.getByTestId("milestone-item").count()) > 0);
    p.assertNoErrors();
    await p.context.close();
  });
});
