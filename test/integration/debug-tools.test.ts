// Worker debugging tools end to end (issue 15): the built Monoceros with a processbin pool behind a
// supervisor-held listen socket and a Python pool, and `monoceros ctl debug` / `ctl profile` as an
// operator runs them. Real tools against real workers: eu-stack (elfutils) on processbin, gdb -batch
// on Python; `make test` installs both as root, and these tests skip, saying why, without them.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findExecutable } from "../../src/backends/os/executable.js";
import { takeProcSnapshot } from "../../src/debug/proc-snapshot.js";
import { adminPort, isAlive, killAll, MONOCEROS, PROCESSBIN, startMonoceros, workerPids, type Running } from "../support/monoceros.js";

const euStack = findExecutable("eu-stack");
const gdb = findExecutable("gdb");
const python = findExecutable("python3");
if (!euStack.ok) console.log("SKIPPED ctl debug with eu-stack: eu-stack is not installed (make test installs it as root: apt-get install -y elfutils)");
if (!gdb.ok || !python.ok) console.log(`SKIPPED ctl debug with gdb on a Python worker: ${gdb.ok ? "python3" : "gdb"} is not installed (make test installs gdb as root: apt-get install -y gdb)`);

const folder = mkdtempSync(join(tmpdir(), "monoceros-debug-"));
const socketPath = join(folder, "ctl.sock");
let port = 0;
let m: Running;
/** Only where python3 is installed: Monoceros refuses to start with an `exec` it cannot find. */
const PYTHON_POOL = `    - name: py
      replicas: 1
      max_restarts: -1
      exec: python3
      args: [-c, "import time\\nwhile True: time.sleep(1)"]
      debug:
        bt: [gdb, -batch, -p, "{{.Pid}}", -ex, bt]
`;

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: free } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return free;
}

/** `monoceros ctl --socket … <args>` as an operator runs it: exit code, output, and how long it took. */
function ctl(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; elapsedMs: number }> {
  const startedMs = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MONOCEROS, "ctl", "--socket", socketPath, ...args], { cwd: folder, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const timer = setTimeout(() => child.kill("SIGKILL"), 50_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, elapsedMs: performance.now() - startedMs });
    });
  });
}

function workerPid(id: string): number {
  const record = m.records().findLast((r) => r.msg === "Worker started" && r.worker_id === id);
  return record?.pid as number;
}

/** The single-letter state of a process (R, S, T, …), or null when it is gone. */
function stateOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return null;
  }
}

beforeAll(async () => {
  port = await freePort();
  m = startMonoceros(`admin: {port: 0, host: 127.0.0.1, control_socket: ${socketPath}}
supervisor:
  workers:
    - name: web
      replicas: 1
      max_restarts: -1
      exec: ${PROCESSBIN}
      args: [--listen-fd, "3", --log-count, "0"]
      listen: ["127.0.0.1:${port}"]
      debug:
        stack: [eu-stack, -p, "{{.Pid}}"]
        hang: [sleep, "100"]
        stopper: [sh, -c, 'kill -STOP {{.Pid}}; exec sleep 100']
        echo: [sh, -c, 'echo "{{.WorkerId}} {{.Pid}}"; echo to-stderr >&2; exit 7']
${python.ok ? PYTHON_POOL : ""}`);
  await m.waitFor("the workers started", () => workerPid("web-0") !== undefined && (!python.ok || workerPid("py-0") !== undefined), 20_000);
  await m.waitFor("the control socket", () => existsSync(socketPath), 20_000);
});

afterAll(async () => {
  const pythonPid = workerPid("py-0") as number | undefined;
  await m.stop();
  killAll(workerPids(m));
  // Not one of test/support's own kinds of worker: checked by its command line before it is killed.
  if (pythonPid !== undefined && isAlive(pythonPid) && readFileSync(`/proc/${pythonPid}/cmdline`, "utf8").includes("time.sleep")) process.kill(-pythonPid, "SIGKILL");
  rmSync(folder, { recursive: true, force: true });
});

describe("ctl debug", () => {
  it.skipIf(!euStack.ok)("runs eu-stack on a processbin worker and streams its stack", async () => {
    const pid = workerPid("web-0");
    const result = await ctl("debug", "web/0", "stack");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`PID ${pid} - process`);
    expect(result.stdout).toMatch(new RegExp(`^TID ${pid}:$`, "m"));
    expect(result.stdout).toMatch(/^#0 +0x[0-9a-f]+ /m);
    expect(result.stdout).toMatch(/uv_run|epoll/);
    const record = m.records().findLast((r) => r.msg === "Debug command ran" && r.name === "stack");
    expect(record).toMatchObject({ pool: "web", worker_id: "web-0", pid, argv: ["eu-stack", "-p", String(pid)], exit_code: 0, requested_via: "control socket", socket: socketPath });
    expect(record?.client_pid).toEqual(expect.any(Number));
    expect(stateOf(pid)).not.toBe("T");
  });

  it.skipIf(!gdb.ok || !python.ok)("runs gdb -batch on a Python worker (by its worker id) and prints its backtrace", async () => {
    const result = await ctl("debug", "py-0", "bt", "--timeout", "40s");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^#0 +/m);
    expect(result.stdout).toMatch(/select|nanosleep|poll|sleep/);
    expect(stateOf(workerPid("py-0"))).not.toBe("T");
  });

  it("fills in the templates, passes stderr as stderr, and exits with the command's code", async () => {
    const pid = workerPid("web-0");
    const result = await ctl("debug", "web-0", "echo");
    expect(result).toMatchObject({ code: 7, stdout: `web-0 ${pid}\n` });
    expect(result.stderr).toMatch(/^to-stderr\nmonoceros ctl: echo exited with code 7 after \d+\.\d s\n$/);
    const json = await ctl("debug", "web/0", "echo", "--json");
    const lines = json.stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual([
      { output: { stream: "stdout", text: `web-0 ${pid}` } },
      { output: { stream: "stderr", text: "to-stderr" } },
      { ok: true, result: expect.objectContaining({ name: "echo", exit_code: 7, stopped: null, output_bytes: 17 + String(pid).length, truncated: false }) },
    ]);
  });

  it("stops a command that hangs at its timeout, its process group killed, within bounds", async () => {
    const result = await ctl("debug", "web/0", "hang", "--timeout", "1s");
    expect(result.code).toBe(124);
    expect(result.stderr).toContain("hang was stopped at its timeout of 1 s");
    expect(result.elapsedMs).toBeGreaterThanOrEqual(1_000);
    expect(result.elapsedMs).toBeLessThan(8_000);
    const record = m.records().findLast((r) => r.msg === "Debug command stopped at its timeout");
    expect(record).toMatchObject({ name: "hang", stopped: "timeout", signal: "SIGTERM", argv: ["sleep", "100"] });
    expect(isAlive(record?.command_pid as number)).toBe(false);
  });

  it("sends SIGCONT to a worker a stopped debug command left stopped", async () => {
    const pid = workerPid("web-0");
    const result = await ctl("debug", "web/0", "stopper", "--timeout", "1s", "--json");
    expect(result.code).toBe(124);
    expect(JSON.parse(result.stdout.trim().split("\n").pop() as string)).toMatchObject({ ok: true, result: { stopped: "timeout", worker_continued: true } });
    expect(stateOf(pid)).not.toBe("T");
    expect(m.records().some((r) => r.msg === "A stopped debug command left the worker stopped; SIGCONT sent to its group" && r.pid === pid)).toBe(true);
  });

  it("refuses an unknown name, listing the names the pool has", async () => {
    expect(await ctl("debug", "web/0", "pystack")).toMatchObject({ code: 1, stdout: "", stderr: 'monoceros ctl: pool web has no debug command "pystack" (known: proc, stack, hang, stopper, echo)\n' });
    expect((await ctl("debug", "web/0", "constructor")).stderr).toMatch(/^monoceros ctl: pool web has no debug command "constructor"/);
    expect(await ctl("debug", "web/1", "stack")).toMatchObject({ code: 1, stderr: "monoceros ctl: worker web-1 is not running (vacant)\n" });
    expect(await ctl("debug", "db/0", "stack")).toMatchObject({ code: 1, stderr: `monoceros ctl: no pool named db (pools: ${python.ok ? "web, py" : "web"})\n` });
  });

  it("takes a /proc snapshot of the worker's group: its pid and its listening socket", async () => {
    const pid = workerPid("web-0");
    const result = await ctl("debug", "web/0", "proc");
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^worker web-0 \\(pid ${pid}\\), process group of 1 process`));
    expect(result.stdout).toMatch(new RegExp(`^== pid ${pid} \\(node\\), ppid ${m.pid}: [RS] `, "m"));
    expect(result.stdout).toMatch(new RegExp(`^ +3  tcp 127\\.0\\.0\\.1:${port} LISTEN, \\d+ waiting to be accepted`, "m"));
    expect(result.stdout).toMatch(/^ {3}memory: Rss \d/m);
    expect(result.stdout).toMatch(/^ {5}Max open files +\d+ \/ \d+ files$/m);
    const json = JSON.parse((await ctl("debug", "web/0", "proc", "--json")).stdout) as { result: { snapshot: { processes: { pid: number; fds: { fd: number; socket?: { state: string; local: string } }[] }[] } } };
    expect(json.result.snapshot.processes[0]?.pid).toBe(pid);
    expect(json.result.snapshot.processes[0]?.fds.find((fd) => fd.fd === 3)?.socket).toMatchObject({ state: "LISTEN", local: `127.0.0.1:${port}` });
  });
});

describe("ctl profile", () => {
  it("writes a CPU profile of 1 s as a .cpuprofile Chrome DevTools reads (JSON with nodes), mode 0600", async () => {
    const path = join(folder, "one.cpuprofile");
    const result = await ctl("profile", "cpu", "1s", "-o", path);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^wrote ${path} \\(\\d+ KiB\\): CPU profile of 1\\.0 s of Monoceros \\(pid ${m.pid}\\)`));
    expect(result.elapsedMs).toBeGreaterThanOrEqual(1_000);
    const profile = JSON.parse(readFileSync(path, "utf8")) as { nodes: { callFrame: unknown }[]; startTime: number; endTime: number; samples: number[] };
    expect(profile.nodes.length).toBeGreaterThan(0);
    expect(profile.nodes[0]?.callFrame).toBeDefined();
    expect(profile.endTime - profile.startTime).toBeGreaterThanOrEqual(900_000); // microseconds
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it("writes a heap snapshot whose JSON starts with {\"snapshot\"", async () => {
    const path = join(folder, "one.heapsnapshot");
    const result = await ctl("profile", "heap", "--output", path);
    expect(result.code, result.stderr).toBe(0);
    const text = readFileSync(path, "utf8");
    expect(text.startsWith('{"snapshot"')).toBe(true);
    expect((JSON.parse(text) as { snapshot: { node_count: number } }).snapshot.node_count).toBeGreaterThan(1_000);
    expect(m.records().findLast((r) => r.msg === "Profile taken and sent")).toMatchObject({ kind: "heap", bytes: Buffer.byteLength(text, "utf8") });
  });

  it("takes one profile at a time, and opens no inspector port", async () => {
    const first = ctl("profile", "cpu", "2s", "-o", join(folder, "first.cpuprofile"));
    await new Promise((resolve) => setTimeout(resolve, 700));
    const second = await ctl("profile", "cpu", "1s", "-o", join(folder, "second.cpuprofile"));
    expect(second).toMatchObject({ code: 1, stderr: "monoceros ctl: a profile is being taken already (one at a time); try again when it is done\n" });
    expect(existsSync(join(folder, "second.cpuprofile"))).toBe(false);
    expect((await first).code).toBe(0);
    // Monoceros's own listening TCP sockets: the admin port and the pool's listen socket, nothing else (no inspector on 9229 or any other).
    const listening = takeProcSnapshot({ pool: "-", workerId: "monoceros", pid: m.pid }).processes[0]?.fds.filter((fd) => fd.socket?.state === "LISTEN" && fd.socket.protocol.startsWith("tcp"));
    expect(listening?.map((fd) => fd.socket?.local).sort()).toEqual([`127.0.0.1:${adminPort(m)}`, `127.0.0.1:${port}`].sort());
  });
});
