// The built executable: dist/monoceros starts the bundle with the V8 code cache written by the
// build, and still runs when that cache is missing, corrupt or rejected. Run as an executable it is
// a shell script first, which keeps NODE_EXTRA_CA_CERTS away from Monoceros's own Node (not from
// its workers); run as `node dist/monoceros` it is an ES module.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Script } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { cleanUpAfterEach, MONOCEROS, ROOT, watchMonoceros, writeConfig } from "../support/monoceros.js";

const track = cleanUpAfterEach(afterEach);

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
    // The loader's wrapper (scripts/loader.cjs): the cache is only valid for this exact text.
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

  it("runs as an executable through a symlink (npm's bin link), and as `sh monoceros` in its folder", () => {
    const folder = mkdtempSync(join(tmpdir(), "monoceros-bin-"));
    try {
      symlinkSync(join(DIST, "monoceros"), join(folder, "monoceros"));
      expect(execFileSync(join(folder, "monoceros"), ["--version"], { encoding: "utf8" })).toMatch(/^monoceros \d+\.\d+\.\d+ /);
      expect(execFileSync("sh", ["monoceros", "--version"], { cwd: DIST, encoding: "utf8" })).toMatch(/^monoceros \d+\.\d+\.\d+ /);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  // Node warns at start-up when it cannot load the file NODE_EXTRA_CA_CERTS names: that warning
  // shows whether Monoceros's own Node read it.
  const CA_WARNING = "Ignoring extra certs";
  const reportsItsEnvironment = `supervisor:
  workers:
    - name: env
      replicas: 1
      exec: sh
      args: ["-c", 'echo "ca=\${NODE_EXTRA_CA_CERTS-unset} saved=\${MONOCEROS_SAVED_NODE_EXTRA_CA_CERTS-unset}"; exec sleep 3600']
`;
  const workerSaid = async (commandLine: string[], value: string) => {
    const m = track(watchMonoceros([...commandLine, "-c", writeConfig(reportsItsEnvironment)], { cwd: ROOT, env: { NODE_EXTRA_CA_CERTS: value } }));
    const line = await m.waitFor("the worker's line", () => m.stderrLines.concat(m.stdoutLines).find((l) => l.includes("ca=")));
    return { said: /ca=[^"\s]* saved=[^"\s]*/.exec(line)?.[0], warned: m.stderrLines.some((l) => l.includes(CA_WARNING)) };
  };

  it("keeps NODE_EXTRA_CA_CERTS from its own Node and hands it to workers unchanged", async () => {
    expect(await workerSaid([MONOCEROS], "/nonexistent/ca.pem")).toEqual({ said: "ca=/nonexistent/ca.pem saved=unset", warned: false });
    // Set but empty: still set, and empty, for the worker.
    expect(await workerSaid([MONOCEROS], "")).toEqual({ said: "ca= saved=unset", warned: false });
    // Started by `node` itself, the shell does not run: Node reads the file (and warns), workers see the same.
    expect(await workerSaid([process.execPath, MONOCEROS], "/nonexistent/ca.pem")).toEqual({ said: "ca=/nonexistent/ca.pem saved=unset", warned: true });
  });
});
