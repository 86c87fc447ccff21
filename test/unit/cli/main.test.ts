import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";

async function run(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(argv, { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) });
  return { code, stdout, stderr };
}

const folder = mkdtempSync(join(tmpdir(), "monoceros-cli-"));
const file = (name: string, text: string) => {
  const path = join(folder, name);
  writeFileSync(path, text);
  return path;
};

describe("monoceros command line", () => {
  it("--validate prints that a valid config is valid and exits 0", async () => {
    const result = await run("-k", "-c", "examples/basic.yaml");
    expect(result).toEqual({
      code: 0,
      stdout: ["config is valid: examples/basic.yaml (1 pool, 3 workers)", "  pool ping: no health_check (ready as soon as it runs); no limits.memory; max_unavailable 1"],
      stderr: [],
    });
  });

  it("--validate spells out the health check, memory limit and max_unavailable in effect, defaults filled in", async () => {
    const path = file("checks.yaml", [
      "supervisor:",
      "  workers:",
      "    - {name: a, replicas: 4, exec: ./a, max_restarts: 1, desired_healthy_percentage: 50, max_unavailable: 50%, limits: {memory: 512MiB}, health_check: {http: {path: /healthz, start_port: 9100, host: '::1'}}}",
      "    - {name: b, replicas: 1, exec: ./b, max_restarts: 1, desired_healthy_percentage: 50, health_check: {exec: [check, '{{.Pid}}'], interval: 1500ms, failure_threshold: 1}}",
      "",
    ].join("\n"));
    const result = await run("-k", "-c", path);
    expect(result.stdout.slice(1)).toEqual([
      "  pool a: health_check http GET [::1]:9100+i/healthz every 10s (timeout 1s, restart after 3 failures in a row, start_period 0s); limits.memory 512MiB (RSS of the process group, 3 samples 1s apart); max_unavailable 2",
      '  pool b: health_check exec ["check","{{.Pid}}"] every 1500ms (timeout 1s, restart after 1 failure in a row, start_period 0s); no limits.memory; max_unavailable 1',
    ]);
  });

  it("--validate warns when max_restarts is unset", async () => {
    const path = file("unset.yaml", "supervisor:\n  workers:\n    - {name: a, replicas: 1, exec: ./a}\n");
    const result = await run("--validate", "--config", path);
    expect(result.code).toBe(0);
    expect(result.stderr).toEqual([
      expect.stringMatching(/^warning: supervisor\.workers\[0\]\.max_restarts: not set/),
      expect.stringMatching(/^warning: supervisor\.workers\[0\]\.desired_healthy_percentage: is 0/),
    ]);
  });

  it("prints every problem of an invalid config, one line each, and exits 2", async () => {
    const path = file("bad.yaml", "supervisor:\n  workers:\n    - name: a\n      replicas: 0\n      exec: ./a\n      signal_timeout: 10\n      startup_wait: 1s\n");
    for (const flags of [["-k"], []]) {
      const result = await run(...flags, "-c", path);
      expect(result.code).toBe(2);
      expect(result.stdout).toEqual([]);
      expect(result.stderr).toHaveLength(3);
      expect(result.stderr.map((line) => line.split(":")[0])).toEqual([
        "supervisor.workers[0].replicas",
        "supervisor.workers[0].signal_timeout",
        "supervisor.workers[0].startup_wait",
      ]);
    }
  });

  it("explains a missing, unreadable or folder config file in one line and exits 2", async () => {
    expect(await run("-c", join(folder, "nope.yaml"))).toEqual({
      code: 2, stdout: [], stderr: [`monoceros: cannot read config file "${join(folder, "nope.yaml")}": no such file`],
    });
    expect((await run("-c", folder)).stderr).toEqual([`monoceros: cannot read config file "${folder}": it is a folder, not a file`]);
  });

  it("reports invalid YAML with line and column", async () => {
    const result = await run("-c", file("syntax.yaml", "supervisor:\n  workers:\n  - name: [a\n"));
    expect(result.code).toBe(2);
    expect(result.stderr).toEqual([expect.stringMatching(/^invalid YAML at line \d+, column \d+: /)]);
  });

  it("rejects bad flags and a missing -c with one line and exit 2", async () => {
    expect(await run("-c", "x.yaml", "--bogus")).toEqual({ code: 2, stdout: [], stderr: ["monoceros: unknown option '--bogus' (see monoceros --help)"] });
    expect(await run()).toEqual({ code: 2, stdout: [], stderr: ["monoceros: required option '-c, --config <file>' not specified (see monoceros --help)"] });
    expect((await run("-c", "x.yaml", "extra")).code).toBe(2);
  });

  it("prints --version and --help and exits 0", async () => {
    const version = await run("--version");
    expect(version.code).toBe(0);
    expect(version.stdout[0]).toMatch(/^monoceros \S+ \(revision \S+, branch \S+, node v\d+/);
    const help = await run("--help");
    expect(help.code).toBe(0);
    expect(help.stdout.join("\n")).toMatch(/-k, --validate/);
  });
});
