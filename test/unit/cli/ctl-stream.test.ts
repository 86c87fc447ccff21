import { closeSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCtl } from "../../../src/cli/ctl.js";
import { debugExitCode, debugSummary, defaultProfilePath, openProfileFile } from "../../../src/cli/ctl-stream.js";

async function ctl(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  // A socket nobody listens on: every request that gets that far is "unreachable" (3).
  const code = await runCtl(["--socket", "/nonexistent/monoceros.sock", ...argv], { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) });
  return { code, stdout, stderr };
}

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

describe("ctl debug and ctl profile arguments", () => {
  it("checks the worker, the name and --timeout before connecting", async () => {
    expect(await ctl("debug", "web", "stack")).toEqual({ code: 2, stdout: [], stderr: ['monoceros ctl: target: debug needs a worker (web/0 or web-0), got the pool "web"'] });
    expect(await ctl("debug", "web/0", "stack", "--timeout", "10m")).toEqual({ code: 2, stdout: [], stderr: ['monoceros ctl: --timeout: must be from 100ms to 5m, got "10m"'] });
    expect((await ctl("debug", "web/0", "stack", "--timeout", "30")).stderr[0]).toMatch(/^monoceros ctl: --timeout: 30 has no unit/);
    expect((await ctl("debug", "web/0", "rm -rf")).stderr[0]).toMatch(/^monoceros ctl: name: must be the name of one of the pool's debug commands/);
    expect((await ctl("debug", "web/0")).code).toBe(2);
    expect(await ctl("debug", "web/0", "stack", "--timeout", "5s")).toEqual({ code: 3, stdout: [], stderr: ["monoceros ctl: Monoceros is not running (nothing listens on /nonexistent/monoceros.sock)"] });
  });

  it("checks the profile's kind and duration, and refuses to overwrite a file", async () => {
    expect(await ctl("profile", "cpu")).toEqual({ code: 2, stdout: [], stderr: ["monoceros ctl: profile cpu needs a duration, e.g. monoceros ctl profile cpu 10s"] });
    expect(await ctl("profile", "heap", "5s")).toEqual({ code: 2, stdout: [], stderr: ["monoceros ctl: profile heap takes no duration (a heap snapshot is taken at once)"] });
    expect(await ctl("profile", "cpu", "6m")).toEqual({ code: 2, stdout: [], stderr: ['monoceros ctl: duration: must be from 100ms to 5m, got "6m"'] });
    expect(await ctl("profile", "memory")).toEqual({ code: 2, stdout: [], stderr: ['monoceros ctl: kind: must be cpu or heap, got "memory"'] });
    const folder = mkdtempSync(join(tmpdir(), "mono-ctl-profile-"));
    folders.push(folder);
    const existing = join(folder, "old.cpuprofile");
    writeFileSync(existing, "keep me");
    expect(await ctl("profile", "cpu", "1s", "-o", existing)).toEqual({ code: 2, stdout: [], stderr: [`monoceros ctl: --output: cannot create ${existing}: it exists already (ctl never overwrites a file; give another --output)`] });
    expect((await ctl("profile", "heap", "-o", join(folder, "no", "such.heapsnapshot"))).stderr).toEqual([`monoceros ctl: --output: cannot create ${join(folder, "no", "such.heapsnapshot")}: its folder does not exist`]);
    // Unreachable: the file made for it is removed again.
    const fresh = join(folder, "new.heapsnapshot");
    expect((await ctl("profile", "heap", "-o", fresh)).code).toBe(3);
    expect(existsSync(fresh)).toBe(false);
  });

  it("names a default file after the kind and time, in the working folder", () => {
    expect(defaultProfilePath("cpu", new Date("2025-03-04T05:06:07.890Z"))).toBe(join(process.cwd(), "monoceros-cpu-20250304-050607.cpuprofile"));
    expect(defaultProfilePath("heap", new Date("2025-03-04T05:06:07.890Z"))).toMatch(/monoceros-heap-20250304-050607\.heapsnapshot$/);
    const folder = mkdtempSync(join(tmpdir(), "mono-ctl-profile-"));
    folders.push(folder);
    const opened = openProfileFile(join(folder, "a.cpuprofile"));
    expect(opened).toMatchObject({ ok: true });
    if (opened.ok) closeSync(opened.fd);
    expect(statSync(join(folder, "a.cpuprofile")).mode & 0o777).toBe(0o600);
  });
});

describe("ctl debug's exit status and summary", () => {
  const result = (fields: Record<string, unknown>) => ({ name: "stack", exit_code: 0, signal: null, exited: true, stopped: null, timeout_ms: 30_000, duration_ms: 1234, ...fields });

  it("exits as the command did: its code, 128 + a signal's number, 124 at the timeout", () => {
    expect(debugExitCode(result({}))).toBe(0);
    expect(debugExitCode(result({ exit_code: 7 }))).toBe(7);
    expect(debugExitCode(result({ exit_code: null, signal: "SIGSEGV" }))).toBe(139);
    expect(debugExitCode(result({ exit_code: null, signal: "SIGTERM", stopped: "timeout" }))).toBe(124);
    expect(debugExitCode(result({ exit_code: null, signal: "SIGTERM", stopped: "output" }))).toBe(143);
    expect(debugExitCode({})).toBe(1);
  });

  it("says nothing after a clean run, and why otherwise", () => {
    expect(debugSummary(result({}))).toEqual([]);
    expect(debugSummary(result({ exit_code: 3 }))).toEqual(["monoceros ctl: stack exited with code 3 after 1.2 s"]);
    expect(debugSummary(result({ exit_code: null, signal: "SIGSEGV" }))).toEqual(["monoceros ctl: stack was killed by SIGSEGV after 1.2 s"]);
    expect(debugSummary(result({ exit_code: null, signal: "SIGTERM", stopped: "timeout", timeout_ms: 2_000 }))).toEqual([
      "monoceros ctl: stack was stopped at its timeout of 2 s (its process group got SIGTERM, then SIGKILL 1 s later)",
    ]);
    expect(debugSummary(result({ exit_code: null, signal: null, exited: false, stopped: "timeout", worker_continued: true }))).toEqual([
      "monoceros ctl: stack was stopped at its timeout of 30 s (its process group got SIGTERM, then SIGKILL 1 s later)",
      "monoceros ctl: stack had not exited 2 s after SIGKILL (stuck in the kernel?)",
      "monoceros ctl: the worker was left stopped (state T) by the command; Monoceros sent it SIGCONT",
    ]);
  });
});
