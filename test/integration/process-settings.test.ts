// Per-pool process settings with real processes: env, cwd, user/group (as root), and {{.Port}} /
// {{.WorkerId}} in args — a server that takes its port positionally, behind HAProxy.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findExecutable } from "../../src/backends/os/executable.js";
import { cleanUpAfterEach, startMonoceros } from "../support/monoceros.js";

const track = cleanUpAfterEach(afterEach);
const isRoot = process.getuid?.() === 0;
const haproxy = findExecutable("haproxy");
if (!isRoot) console.log("SKIPPED process-settings user/group test: needs root (make test runs as root in CI)");
if (!haproxy.ok) console.log("SKIPPED process-settings HAProxy test: haproxy is not installed (make test installs it as root)");

describe("per-pool process settings", () => {
  it.skipIf(!isRoot)("runs workers with the pool's env, in its cwd, as its user and group, {{.WorkerId}} filled in", async () => {
    const folder = mkdtempSync(join(tmpdir(), "monoceros-cwd-"));
    const script = 'echo "who=$(id -u):$(id -g):$(id -G) cwd=$(pwd) mode=$APP_MODE mwid=$MULTIPROCESS_WORKER_ID arg=$0"; sleep 30';
    const m = track(startMonoceros(`supervisor:
  workers:
    - name: app
      replicas: 2
      max_restarts: -1
      exec: sh
      args: ["-c", ${JSON.stringify(script)}, "{{.WorkerId}}"]
      env: {APP_MODE: production}
      cwd: ${folder}
      user: nobody
      group: nogroup
`));
    const lines = await m.waitFor("both workers' lines", () => {
      const found = m.records().filter((r) => typeof r.worker_info_msg === "string" && r.worker_info_msg.startsWith("who=")).map((r) => r.worker_info_msg as string);
      return found.length >= 2 ? found.sort() : undefined;
    });
    // nobody's groups only: root's supplementary groups are dropped.
    expect(lines).toEqual([0, 1].map((i) => `who=65534:65534:65534 cwd=${folder} mode=production mwid=app_app-${i} arg=app-${i}`));
  });

  it.skipIf(!isRoot || !findExecutable("systemd-notify").ok)("a worker run as another user reaches its notify socket (its own, in a folder others cannot list)", async () => {
    const m = track(startMonoceros(`supervisor:
  workers:
    - name: n
      replicas: 1
      max_restarts: -1
      user: nobody
      exec: sh
      args: ["-c", "systemd-notify --ready; sleep 30"]
      health_check: {notify: true, interval: 10s}
`));
    await m.waitFor("READY=1 from a worker run as nobody", () => m.records().find((r) => r.msg === "Worker is ready"));
    expect(m.records().filter((r) => typeof r.worker_error_msg === "string")).toEqual([]);
  });

  it("fails at start-up, exit 2, naming the field, for a cwd that does not exist or a user that does not", async () => {
    {
      const m = track(startMonoceros(`supervisor:
  workers:
    - name: app
      replicas: 1
      exec: sh
      cwd: /nonexistent/folder
      user: no-such-user-here
`));
      const { code } = await m.exited;
      expect(code).toBe(2);
      expect(m.stderrLines).toEqual(expect.arrayContaining([
        "supervisor.workers[0].cwd: /nonexistent/folder: no such folder",
        isRoot ? "supervisor.workers[0].user: user no-such-user-here: no such user" : expect.stringMatching(/^supervisor\.workers\[0\]\.user: user no-such-user-here: running workers as another user needs Monoceros to run as root/),
      ]));
    }
  });

  it.skipIf(!haproxy.ok)("serves a server that takes its port positionally (python3 -m http.server {{.Port}}) behind HAProxy, port_arg.name empty", async () => {
    const start = 24_000 + Math.floor(Math.random() * 6_000);
    const folder = mkdtempSync(join(tmpdir(), "monoceros-positional-"));
    const m = track(startMonoceros(`supervisor:
  workers:
    - name: files
      replicas: 2
      max_restarts: -1
      stderr_level: info
      exec: python3
      args: [-m, http.server, "{{.Port}}", --bind, 127.0.0.1]
      cwd: ${folder}
      server:
        proxy: haproxy
        port_arg: {name: "", value_template: "{{.Port}}", start_port: ${start}}
        health_check_path: /
        proxy_config_path: ${join(folder, "haproxy")}
        listener_port: ${start + 50}
`));
    const deadline = performance.now() + 20_000;
    let text: string | null = null;
    while (performance.now() < deadline && text === null) {
      try {
        const response = await fetch(`http://127.0.0.1:${start + 50}/`, { signal: AbortSignal.timeout(2_000) });
        if (response.ok) text = await response.text();
      } catch {
        // not yet
      }
      if (text === null) await new Promise((r) => setTimeout(r, 100));
    }
    expect(text).toContain("Directory listing");
    const started = m.records().filter((r) => r.msg === "Worker started").map((r) => r.worker_id);
    expect(started.sort()).toEqual(["files-0", "files-1"]);
    // http.server logs each request to stderr: at stderr_level info, not error.
    await m.waitFor("a request line", () => m.records().find((r) => typeof r.worker_error_msg === "string" && r.worker_error_msg.includes('"GET / HTTP')));
    expect(m.records().filter((r) => typeof r.worker_error_msg === "string").every((r) => r.level === "info")).toBe(true);
  }, 60_000);
});
