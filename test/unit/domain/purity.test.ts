import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// The same rule as eslint.config.js, checked a second way so that `make test` alone catches it.
const FORBIDDEN: [RegExp, string][] = [
  [/from\s+["']node:/, "imports a node: module"],
  [/from\s+["'](fs|child_process|net|http|os|process|timers|crypto)["']/, "imports a Node built-in"],
  [/\bDate\b/, "touches Date"],
  [/\bMath\.random\b/, "uses Math.random"],
  [/\b(setTimeout|setInterval|setImmediate|queueMicrotask)\b/, "uses timers"],
  [/\bprocess\./, "touches process"],
  [/\bperformance\./, "reads the clock"],
];

describe("src/domain is pure", () => {
  const folder = new URL("../../../src/domain/", import.meta.url).pathname;
  const files = readdirSync(folder, { recursive: true }).map(String).filter((name) => name.endsWith(".ts"));

  it("has files to check", () => expect(files.length).toBeGreaterThan(3));

  it.each(files)("%s does no I/O, reads no clock and draws no unseeded randomness", (file) => {
    const code = readFileSync(join(folder, file), "utf8").replace(/\/\/.*$/gm, "").replace(/\/\*[\s\S]*?\*\//g, "");
    const problems = FORBIDDEN.filter(([pattern]) => pattern.test(code)).map(([, what]) => what);
    expect(problems).toEqual([]);
  });
});
