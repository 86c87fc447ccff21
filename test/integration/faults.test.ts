// Promises kept under faults, with real processes: nothing of a crashed worker outlives it,
// nothing of any worker outlives Monoceros (even a child that left the worker's group), a crash
// loop backs off, /health tells the truth (a crash-looping pool, a proxy that is down), and the
// orphan watchdog survives being killed without a tight loop.
import { createServer, type Server } from "node:net";
import { readdirSync, readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { findExecutable } from "../../src/backends/os/executable.js";
import { WATCHDOG_NAME } from "../../src/backends/os/watchdog.js";
import { cleanUpAfterEach, isAlive, pollFor, pollForAsync, proxyPoolConfig, startMonoceros, type Running } from "../support/monoceros.js";

const track = cleanUpAfterEach(afterEach);
const haproxy = findExecutable("haproxy");
if (!haproxy.ok) console.log("SKIPPED the proxy-down health test: haproxy is not installed (make test installs it as root)");

/** A sleep duration no other test uses, so its processes can be found by their command line. */
const uniqueSleep = () => `${1000 + Math.floor(Math.random() * 8000)}.${Math.floor(Math.random() * 1e6)}`;

interface Proc {
  pid: number;
  pgid: number;
  ppid: number;
  cmdline: string;
}

function processes(): Proc[] {
  const found: Proc[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue;
      found.push({ pid: Number(entry), ppid: Number(fields[1]), pgid: Number(fields[2]), cmdline: readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim() });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const sleepers = (duration: string) => processes().filter((p) => p.cmdline === `sleep ${duration}`);

/** SIGKILL whatever a failed test left behind, by pid. */
const leftovers: string[] = [];
afterEach(() => {
  for (const duration of leftovers.splice(0)) {
    for (const p of sleepers(duration)) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
});

function adminPort(m: Running): Promise<number> {
  return m.waitFor("the admin endpoint", () => m.records().find((r) => r.msg === "Admin endpoint listening (/metrics, /health, /status)")?.port as number | undefined);
}

function pool(lines: string): string {
  return `admin: {port: 0, host: 127.0.0.1}\nsupervisor:\n  workers:\n    - name: web\n${lines}`;
}

describe("faults", () => {
  it("stops what a SIGKILLed worker left in its group, and restarts it without waiting for the pipes", async () => {
    const [a, b] = [uniqueSleep(), uniqueSleep()];
    leftovers.push(a, b);
    const m = track(startMonoceros(pool(`      replicas: 1\n      max_restarts: -1\n      exec: bash\n      args: ["-c", "sleep ${a} & sleep ${b} & wait"]\n`)));
    const first = await m.waitFor("the worker and its two children", () => {
      const started = m.records().find((r) => r.msg === "Worker started");
      return started !== undefined && sleepers(a).length === 1 && sleepers(b).length === 1 ? (started.pid as number) : undefined;
    });
    process.kill(first, "SIGKILL");
    // Its children were in its group: they get SIGTERM and go; the next incarnation has its own.
    await m.waitFor("the old group to be empty", () => processes().every((p) => p.pgid !== first));
    const restarted = await m.waitFor("the restart", () => m.records().find((r) => r.msg === "Worker started" && r.restarts === 1));
    expect(m.records().find((r) => r.msg === "Processes of the worker's group outlived it; sending them SIGTERM")).toMatchObject({ pgid: first });
    const exitedAt = m.records().find((r) => r.msg === "Worker exited")?.ts as number;
    // Today's bound is signal_timeout (10 s by default) for leftovers; sleep obeys SIGTERM at once.
    expect((restarted.ts as number) - exitedAt).toBeLessThan(1.5);
    m.child.kill("SIGTERM");
    expect((await m.exited).code).toBe(0);
    expect(sleepers(a)).toEqual([]);
    expect(sleepers(b)).toEqual([]);
  });

  it("piles up no orphans from a crash loop whose worker leaves a child each time, and backs off", async () => {
    const a = uniqueSleep();
    leftovers.push(a);
    const m = track(startMonoceros(pool(`      replicas: 1\n      max_restarts: -1\n      exec: bash\n      args: ["-c", "sleep ${a} & exit 1"]\n`)));
    let most = 0;
    await m.waitFor("six restarts", () => {
      most = Math.max(most, sleepers(a).length);
      return m.records().filter((r) => r.msg === "Worker started").length >= 7;
    });
    expect(most).toBeLessThanOrEqual(1);
    expect(m.records().some((r) => r.msg === "Worker keeps exiting soon after start; restarting it after a backoff")).toBe(true);
    m.child.kill("SIGTERM");
    expect((await m.exited).code).toBe(0);
    expect(sleepers(a)).toEqual([]);
  });

  it("kills a child that left its worker's group (setsid) when Monoceros is SIGKILLed, by the instance marker", async () => {
    const [escaped, worker] = [uniqueSleep(), uniqueSleep()];
    leftovers.push(escaped, worker);
    const m = track(startMonoceros(pool(`      replicas: 1\n      max_restarts: -1\n      exec: bash\n      args: ["-c", "setsid sleep ${escaped} & exec sleep ${worker}"]\n`)));
    const outside = await m.waitFor("the escaped child", () => {
      const [p] = sleepers(escaped);
      const [w] = sleepers(worker);
      return p !== undefined && w !== undefined ? p : undefined;
    });
    expect(outside.pgid).toBe(outside.pid); // its own session and group: a group kill misses it
    expect(readFileSync(`/proc/${outside.pid}/environ`, "utf8").split("\0").some((entry) => entry.startsWith("MONOCEROS_INSTANCE_ID="))).toBe(true);
    process.kill(m.pid, "SIGKILL");
    await m.exited;
    await pollFor("both sleeps to be gone", () => sleepers(escaped).length === 0 && sleepers(worker).length === 0, 10_000);
  });

  it("leaves nothing behind after a graceful shutdown either, the escaped child included", async () => {
    const escaped = uniqueSleep();
    leftovers.push(escaped);
    const m = track(startMonoceros(pool(`      replicas: 2\n      max_restarts: -1\n      exec: bash\n      args: ["-c", "setsid sleep ${escaped} & exec sleep 1000"]\n`)));
    await m.waitFor("two escaped children", () => sleepers(escaped).length === 2);
    m.child.kill("SIGTERM");
    expect((await m.exited).code).toBe(0);
    await pollFor("the escaped children to be gone", () => sleepers(escaped).length === 0, 10_000);
  });

  it("answers /health 503 for a crash-looping pool and shows its worker in backoff", async () => {
    const m = track(startMonoceros(pool(`      replicas: 1\n      max_restarts: -1\n      desired_healthy_percentage: 100\n      exec: "false"\n`)));
    const port = await adminPort(m);
    const seen = await pollForAsync("a worker in backoff", async () => {
      const body = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { pools: { workers: { state: string; quick_exits: number }[] }[] };
      const worker = body.pools[0]?.workers[0];
      return worker !== undefined && worker.state === "backoff" && worker.quick_exits >= 3 ? worker : undefined;
    }, 20_000);
    expect(seen.state).toBe("backoff");
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(503);
    expect(await health.text()).toMatch(/^pool web: 0 of 1 workers up \(0% < 100%\)/);
    // About 175 restarts a second without a backoff; with the default policy a handful in the first seconds.
    const starts = m.records().filter((r) => r.msg === "Worker started").length;
    expect(starts).toBeLessThan(20);
  });

  it("restarts a killed orphan watchdog after a growing delay, and still leaves no orphan", async () => {
    const worker = uniqueSleep();
    leftovers.push(worker);
    const m = track(startMonoceros(pool(`      replicas: 2\n      max_restarts: -1\n      exec: sleep\n      args: ["${worker}"]\n`)));
    await m.waitFor("two workers", () => sleepers(worker).length === 2);
    const watchdogs = () => processes().filter((p) => p.ppid === m.pid && p.cmdline.includes(`# ${WATCHDOG_NAME}`));
    for (let kill = 1; kill <= 3; kill++) {
      const [watchdog] = await m.waitFor("a watchdog", () => (watchdogs().length === 1 ? watchdogs() : undefined));
      process.kill((watchdog as Proc).pid, "SIGKILL");
      await m.waitFor(`restart ${kill} of the watchdog`, () => m.records().filter((r) => String(r.msg).startsWith("the orphan watchdog exited")).length >= kill);
    }
    const delays = m.records().filter((r) => String(r.msg).startsWith("the orphan watchdog exited")).map((r) => Number(/in (\d+) ms/.exec(String(r.msg))?.[1]));
    expect(delays).toEqual([100, 200, 400]);
    await m.waitFor("a new watchdog", () => watchdogs().length === 1);
    process.kill(m.pid, "SIGKILL");
    await m.exited;
    await pollFor("the workers to be gone", () => sleepers(worker).length === 0, 10_000);
  });

  it("as PID 1 (a container without an init) warns, and does not wait for zombies it cannot reap", async () => {
    const child = uniqueSleep();
    leftovers.push(child);
    // A worker that leaves a child and crashes: the child gets SIGTERM, and with nobody else to
    // reap it, stays a zombie of Monoceros's. Zombies do not hold a restart up.
    const m = track(startMonoceros(pool(`      replicas: 1\n      max_restarts: -1\n      restart_policy: {backoff_initial: 0}\n      exec: bash\n      args: ["-c", "sleep ${child} & sleep 0.2; exit 1"]\n`), [], { prefix: ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL"] }));
    await m.waitFor("five starts", () => m.records().filter((r) => r.msg === "Worker started").length >= 5, 20_000);
    expect(m.records().some((r) => String(r.msg).startsWith("Monoceros runs as PID 1"))).toBe(true);
    // Each restart followed its leftover's SIGTERM at once, not the 5 s give-up after a SIGKILL.
    expect(m.records().some((r) => r.msg === "Worker's processes were not reported gone after SIGKILL; no longer waiting for them")).toBe(false);
    // Monoceros is unshare's child (PID 1 inside); when it exits, the kernel ends the rest of its namespace.
    const inner = processes().find((p) => p.ppid === m.pid) as Proc;
    process.kill(inner.pid, "SIGTERM");
    expect((await m.exited).code).toBe(0);
    await pollFor("the leftover children to be gone", () => sleepers(child).length === 0, 10_000);
  });

  it.skipIf(!haproxy.ok)("answers /health 503 while a pool's proxy is down (HAProxy cannot bind its listener)", async () => {
    const start = 23_000 + Math.floor(Math.random() * 8_000);
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(start + 50, "127.0.0.1", resolve));
    try {
      const { yaml } = proxyPoolConfig({
        proxy: "haproxy", admin: true, replicas: 1, signalTimeout: "2s", startPort: start, listenerPort: start + 50, serverSignalTimeout: "2s", folderPrefix: "monoceros-faults-",
      });
      const m = track(startMonoceros(yaml));
      const port = await adminPort(m);
      await m.waitFor("the proxy to fail at least twice", () => m.records().filter((r) => r.msg === "Proxy exited").length >= 2);
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(health.status).toBe(503);
      expect(await health.text()).toBe("pool web: its proxy is not running\n");
      const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as { pools: { proxy: { restarts: number; last_exit: unknown } }[] };
      expect(status.pools[0]?.proxy.restarts).toBeGreaterThanOrEqual(1);
      expect(status.pools[0]?.proxy.last_exit).not.toBeNull();
      // Once the port is free the proxy comes up and the pool is healthy again.
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
      await pollForAsync("/health 200", async () => (await fetch(`http://127.0.0.1:${port}/health`).catch(() => null))?.status === 200, 30_000);
      expect(isAlive(m.pid)).toBe(true);
    } finally {
      blocker.close();
    }
  });
});
