// The console's modules import each other without a cycle: main.ts (the
// shell) imports the views, and the views share what they need through
// session.ts rather than by importing main.ts back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src");

test("web/src has no import cycle", () => {
  const graph = new Map();
  for (const f of readdirSync(src).filter((f) => f.endsWith(".ts"))) {
    const text = readFileSync(path.join(src, f), "utf8");
    const deps = [...text.matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"\.\/([^"]+)"/gms)].map((m) => m[1].replace(/\.ts$/, "") + ".ts");
    graph.set(f, deps);
  }
  assert.ok(graph.get("main.ts")?.includes("operations.ts"), "the parser finds main.ts's imports");
  const cycles = [];
  const visit = (f, trail) => {
    if (trail.includes(f)) {
      cycles.push([...trail.slice(trail.indexOf(f)), f].join(" → "));
      return;
    }
    for (const d of graph.get(f) ?? []) visit(d, [...trail, f]);
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual([...new Set(cycles)], []);
});
