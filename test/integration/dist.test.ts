// The built executable: dist/monoceros starts the bundle with the V8 code cache written by the
// build, and still runs when that cache is missing, corrupt or rejected.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Script } from "node:vm";
import { describe, expect, it } from "vitest";
import { ROOT } from "../support/monoceros.js";

const DIST = join(ROOT, "dist");
const EXAMPLE = join(ROOT, "examples/basic.yaml");

function copyOfDist(): string {
  const folder = mkdtempSync(join(tmpdir(), "monoceros-dist-"));
  cpSync(DIST, folder, { recursive: true });
  return folder;
}

function validate(folder: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(folder, "monoceros"), "--validate", "-c", EXAMPLE], { encoding: "utf8" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("dist/monoceros", () => {
  it("ships a code cache that this Node accepts for the bundle it was built with", () => {
    const bundle = readFileSync(join(DIST, "monoceros.cjs"), "utf8");
    // The loader's wrapper (scripts/loader.mjs): the cache is only valid for this exact text.
    const source = `(function (exports, require, module, __filename, __dirname) {${bundle}\n})`;
    const script = new Script(source, { filename: join(DIST, "monoceros.cjs"), cachedData: readFileSync(join(DIST, "monoceros.v8cache")) });
    expect(script.cachedDataRejected).toBe(false);
  });

  it("runs from a copy of dist/ elsewhere, with its cache, without it, and with a corrupt one", () => {
    const folder = copyOfDist();
    try {
      expect(validate(folder)).toMatchObject({ status: 0, stdout: expect.stringContaining("config is valid"), stderr: "" });
      writeFileSync(join(folder, "monoceros.v8cache"), "not a code cache");
      expect(validate(folder)).toMatchObject({ status: 0, stdout: expect.stringContaining("config is valid"), stderr: "" });
      rmSync(join(folder, "monoceros.v8cache"));
      expect(validate(folder)).toMatchObject({ status: 0, stdout: expect.stringContaining("config is valid"), stderr: "" });
      // Errors still come out as one line, from the bundle, through the loader.
      const bad = spawnSync(process.execPath, [join(folder, "monoceros"), "-c", join(folder, "missing.yaml")], { encoding: "utf8" });
      expect(bad.status).toBe(2);
      expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it("prints its version through the loader", () => {
    expect(execFileSync(join(DIST, "monoceros"), ["--version"], { encoding: "utf8" })).toMatch(/^monoceros \d+\.\d+\.\d+ /);
  });
});
