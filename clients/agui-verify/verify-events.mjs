// Runs sequences of AG-UI events through @ag-ui/client's own stages, the
// ones runAgent applies after the transport (enforcement, chunk expansion,
// the verifier), and reports for each sequence the index of the first event
// refused (-1 when all pass) with the client's message.
//
// As a command: node verify-events.mjs < cases.json  (an array of arrays of
// event objects) prints the results as a JSON array.
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const cases = JSON.parse(readFileSync(0, "utf8"));
  process.stdout.write(JSON.stringify(await verifySequences(cases)) + "\n");
}
