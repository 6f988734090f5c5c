// node --test: runs a stock HttpAgent (verifier on) against AGUI_URL and
// writes what it assembled to AGUI_OUT as JSON. Skipped without AGUI_URL.
//
//   AGUI_URL      the AG-UI endpoint
//   AGUI_HEADERS  JSON object of request headers (e.g. Last-Event-ID)
//   AGUI_RUN_ID   the runId to send (default: a UUID)
//   AGUI_STATE    JSON of the agent's initial state (default {})
//   AGUI_FORWARDED JSON of the run's forwardedProps (default none)
//   AGUI_MESSAGES JSON array of the agent's initial messages (default [])
//   AGUI_RESUME   JSON array of the run's resume entries (default none)
//   AGUI_ABORT_ON abort (detach from) the run at the CUSTOM event of this name
//   AGUI_EXPECT_ERROR  when set, runAgent must fail: {error: message} is
//                 written instead
//   AGUI_OUT      file to write {messages, state, result, newMessages, events}
//                 (default: stdout)
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { runAgainst } from "./run-agent.mjs";

const url = process.env.AGUI_URL;

test("HttpAgent.runAgent with the verifier accepts the stream", { skip: !url && "AGUI_URL is not set" }, async () => {
  const run = () => runAgainst(url, {
    headers: process.env.AGUI_HEADERS ? JSON.parse(process.env.AGUI_HEADERS) : {},
    runId: process.env.AGUI_RUN_ID || undefined,
    initialState: process.env.AGUI_STATE ? JSON.parse(process.env.AGUI_STATE) : undefined,
    forwardedProps: process.env.AGUI_FORWARDED ? JSON.parse(process.env.AGUI_FORWARDED) : undefined,
    initialMessages: process.env.AGUI_MESSAGES ? JSON.parse(process.env.AGUI_MESSAGES) : undefined,
    resume: process.env.AGUI_RESUME ? JSON.parse(process.env.AGUI_RESUME) : undefined,
    abortOnCustom: process.env.AGUI_ABORT_ON || undefined,
  });
  let out;
  if (process.env.AGUI_EXPECT_ERROR) {
    await assert.rejects(run(), (err) => {
      out = { error: String(err?.message ?? err) };
      return true;
    });
  } else {
    out = await run();
  }
  const json = JSON.stringify(out);
  if (process.env.AGUI_OUT) writeFileSync(process.env.AGUI_OUT, json);
  else console.log(json);
});
