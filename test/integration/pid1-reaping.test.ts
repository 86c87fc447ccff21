// Monoceros as the first process of a container: a worker's child that daemonizes (its parent exits,
// so the kernel hands it to PID 1) must be reaped when it exits, or its zombie holds a pid for ever.
// Node reaps only the children it spawned, so deploy/Dockerfile makes tini PID 1. Each case runs in
// a PID namespace of its own (`unshare --pid --fork --mount-proc`, as root), with the Dockerfile's
// own ENTRYPOINT (tini, its flags, then Monoceros), and without it (Monoceros itself PID 1: the
// zombies stay, and Monoceros warns). Skipped with the reason printed without unshare or tini.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findExecutable } from "../../src/backends/os/executable.js";
import { MONOCEROS, pollFor, ROOT } from "../support/monoceros.js";

/** Each worker leaves one orphan that lives this long, long enough to be seen alive under PID 1. */
const ORPHAN_SLEEP_SECONDS = 3;
const WORKERS = 2;

function availability(): { ok: true; tini: string } | { ok: false; reason: string } {
  const tini = findExecutable("tini");
  if (!tini.ok) return { ok: false, reason: "no tini in PATH (make test installs Debian's tini as root)" };
  const probe = spawnSync("unshare", ["--pid", "--fork", "--mount-proc", "true"], { encoding: "utf8", timeout: 10_000 });
  if (probe.status !== 0) return { ok: false, reason: `unshare --pid --fork --mount-proc fails here: ${(probe.error?.message ?? probe.stderr).trim()}` };
  return { ok: true, tini: tini.path };
}

const tools = availability();
if (!tools.ok) console.log(`SKIPPED PID 1 reaping tests: ${tools.reason}`);

/** deploy/Dockerfile's ENTRYPOINT, with the image's paths replaced by this machine's. */
function dockerEntrypoint(tini: string): string[] {
  const line = readFileSync(join(ROOT, "deploy/Dockerfile"), "utf8").split("\n").find((l) => l.startsWith("ENTRYPOINT "));
  const entrypoint = JSON.parse(line?.slice("ENTRYPOINT ".length) ?? "[]") as string[];
  expect(entrypoint[0]).toBe("/usr/bin/tini");
  expect(entrypoint.at(-1)).toBe("/opt/monoceros/bin/monoceros");
  return [tini, ...entrypoint.slice(1, -1), process.execPath, MONOCEROS];
}

interface Proc {
  ppid: number;
  state: string;
  startTime: string;
}

function proc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] as string, ppid: Number(fields[1]), startTime: fields[19] as string };
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

interface Namespace {
  /** The namespace's PID 1, as this (the host's) namespace numbers it. */
  initPid: number;
  stderr: () => string;
  exited: Promise<number | null>;
}

const started: Namespace[] = [];
const folders: string[] = [];
afterEach(async () => {
  // Killing a namespace's PID 1 makes the kernel SIGKILL every process in it.
  for (const namespace of started.splice(0)) {
    const init = proc(namespace.initPid);
    if (init !== undefined && init.state !== "Z" && /tini|monoceros/.test(cmdline(namespace.initPid))) process.kill(namespace.initPid, "SIGKILL");
    await namespace.exited;
  }
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

async function startInNamespace(command: string[]): Promise<Namespace> {
  const folder = mkdtempSync(join(tmpdir(), "monoceros-pid1-"));
  folders.push(folder);
  const config = join(folder, "config.yaml");
  writeFileSync(config, [
    "admin:",
    "  port: 0",
    "  host: 127.0.0.1",
    `  control_socket: ${join(folder, "control.sock")}`,
    "supervisor:",
    "  workers:",
    "    - name: parent",
    `      replicas: ${WORKERS}`,
    "      exec: sh",
    // The subshell starts the sleep and exits: the sleep is orphaned, reparented to PID 1.
    `      args: ["-c", "(sleep ${ORPHAN_SLEEP_SECONDS} &); exec sleep 1000"]`,
    "      max_restarts: -1",
    "      desired_healthy_percentage: 100",
    "",
  ].join("\n"));
  const child = spawn("unshare", ["--pid", "--fork", "--mount-proc", ...command, "-c", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const initPid = await pollFor("the namespace's PID 1", () => childrenOf(child.pid as number)[0], 10_000);
  const namespace = { initPid, stderr: () => stderr, exited };
  started.push(namespace);
  return namespace;
}

/** The orphaned sleeps, once every worker's is alive and a child of the namespace's PID 1. */
async function orphans(namespace: Namespace): Promise<Map<number, string>> {
  return pollFor("the workers' orphans reparented to PID 1", () => {
    const found = new Map<number, string>();
    for (const pid of childrenOf(namespace.initPid)) {
      if (cmdline(pid) === `sleep ${ORPHAN_SLEEP_SECONDS}`) found.set(pid, proc(pid)?.startTime ?? "");
    }
    return found.size === WORKERS && found;
  }, 15_000);
}

const isGone = (pid: number, startTime: string) => proc(pid)?.startTime !== startTime;
const isZombie = (pid: number, startTime: string) => {
  const p = proc(pid);
  return p !== undefined && p.startTime === startTime && p.state === "Z";
};
const PID1_WARNING = "Monoceros runs as PID 1";

describe.skipIf(!tools.ok)("Monoceros in a container's PID namespace", () => {
  it("under the Dockerfile's tini: orphans that exit are reaped, SIGTERM reaches Monoceros, exit 0", async () => {
    const namespace = await startInNamespace(dockerEntrypoint(tools.ok ? tools.tini : ""));
    const sleeps = await orphans(namespace);
    await pollFor("the orphans reaped", () => [...sleeps].every(([pid, startTime]) => isGone(pid, startTime)), (ORPHAN_SLEEP_SECONDS + 10) * 1000);
    expect(namespace.stderr()).toContain('"msg":"Worker started"');
    expect(namespace.stderr()).not.toContain(PID1_WARNING);
    process.kill(namespace.initPid, "SIGTERM");
    expect(await namespace.exited).toBe(0);
    expect(namespace.stderr()).toContain('"msg":"All workers stopped; exiting"');
  }, 60_000);

  it("as PID 1 itself: Monoceros warns, and the orphans stay zombies (why the image has tini)", async () => {
    const namespace = await startInNamespace([process.execPath, MONOCEROS]);
    const sleeps = await orphans(namespace);
    await pollFor("the orphans exited", () => [...sleeps].every(([pid, startTime]) => isZombie(pid, startTime)), (ORPHAN_SLEEP_SECONDS + 10) * 1000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect([...sleeps].every(([pid, startTime]) => isZombie(pid, startTime)), "still zombies a second later").toBe(true);
    expect(namespace.stderr()).toContain(PID1_WARNING);
    process.kill(namespace.initPid, "SIGTERM");
    expect(await namespace.exited).toBe(0);
  }, 60_000);
});
