// Runs sequences of AG-UI events through @ag-ui/client's own stages, the
// ones runAgent applies after the transport (enforcement, chunk expansion,
// the verifier), and reports for each sequence the index of the first event
// refused (-1 when all pass) with the client's message.
//
// As a command it reads JSON on stdin and prints the results (see the end).
import { enforceEvents, transformChunks, verifyEvents } from "@ag-ui/client";
import { from, lastValueFrom, tap, toArray } from "rxjs";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";

/**
 * @param {object[][]} cases sequences of event objects
 * @returns {Promise<{bad: number, error?: string}[]>}
 */
export async function verifySequences(cases) {
  const results = [];
  for (const events of cases) {
    let passed = 0;
    try {
      await lastValueFrom(
        from(events).pipe(
          enforceEvents(),
          transformChunks(),
          verifyEvents(),
          tap(() => passed++),
          toArray(),
        ),
      );
      results.push({ bad: -1 });
    } catch (err) {
      results.push({ bad: passed, error: String(err?.message ?? err) });
    }
  }
  return results;
}

/**
 * Runs each event alone through the client's enforcement stage (the
 * @ag-ui/core 1.0.0 zod schema of its type).
 * @param {object[]} events
 * @returns {Promise<(string|null)[]>} null for an accepted event, else the error
 */
export async function enforceEach(events) {
  const results = [];
  for (const event of events) {
    try {
      await lastValueFrom(from([event]).pipe(enforceEvents(), toArray()));
      results.push(null);
    } catch (err) {
      results.push(String(err?.message ?? err));
    }
  }
  return results;
}

// As a command: stdin is an array of sequences (verifySequences), or
// {"enforce": [events]} (enforceEach).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const input = JSON.parse(readFileSync(0, "utf8"));
  const out = Array.isArray(input) ? await verifySequences(input) : await enforceEach(input.enforce);
  process.stdout.write(JSON.stringify(out) + "\n");
}
