// What `ctl debug` and `ctl profile` do inside Monoceros: find the worker, choose the command (a
// pool's `debug:` entry with its templates filled in, or the built-in proc snapshot), keep to the
// limits (runs at once, one profile at a time), log every run with who asked, and answer. The
// spawning is backends/os/debug-command.ts's, the reading of /proc proc-snapshot.ts's, the
// profiling profiler.ts's.
import { closeSync } from "node:fs";
import { runDebugCommand, type DebugCommandOutcome } from "../backends/os/debug-command.js";
import { parseTemplate } from "../config/port-template.js";
import { resolveTarget } from "../control/protocol.js";
import type { ControlResult, ControlStream, DebugRequest, ProfileRequest } from "../control/server.js";
import { workerPort } from "../domain/identity.js";
import { activePools, isLive, type PoolState, type SupervisorState, type WorkerState } from "../domain/state.js";
import { DEBUG_LIMITS, PROC_SNAPSHOT_NAME } from "./limits.js";
import { groupStates, takeProcSnapshot } from "./proc-snapshot.js";
import { sendFile, sendText, takeCpuProfile, takeHeapSnapshot } from "./profiler.js";

export type DebugReport = (level: "info" | "warn", msg: string, fields: Record<string, unknown>) => void;

export interface DebugToolsOptions {
  report: DebugReport;
  /** The control socket's path, for the log records (who asked: whoever may open it). */
  socketPath: () => string | null;
}

type Found = { ok: true; pool: PoolState; worker: WorkerState & { pid: number } } | { ok: false; error: string };

export class DebugTools {
  private runs = 0;
  private profiling = false;
  /** Debug commands get the workers' environment with the instance mark (the watchdog sweeps it if Monoceros dies). */
  private env: Readonly<Record<string, string | undefined>> = process.env;

  constructor(
    private readonly state: SupervisorState,
    private readonly options: DebugToolsOptions,
  ) {}

  useEnvironment(env: Readonly<Record<string, string | undefined>>): void {
    this.env = env;
  }

  /** Who asked, as far as Monoceros can tell: Node cannot read a unix socket peer's credentials. */
  private requester(clientPid: number | null): Record<string, unknown> {
    return { requested_via: "control socket", socket: this.options.socketPath(), ...(clientPid === null ? {} : { client_pid: clientPid }) };
  }

  async debug(request: DebugRequest, stream: ControlStream): Promise<ControlResult> {
    const found = this.findWorker(request);
    if (!found.ok) return found;
    const { pool, worker } = found;
    const commands = pool.config.debug ?? {};
    const known = [PROC_SNAPSHOT_NAME, ...Object.keys(commands)];
    // Own keys only: "constructor" or "toString" must not find Object.prototype's.
    const argv = request.name === PROC_SNAPSHOT_NAME ? null : Object.hasOwn(commands, request.name) ? commands[request.name] : undefined;
    if (argv === undefined) return { ok: false, error: `pool ${pool.config.name} has no debug command ${JSON.stringify(request.name)} (known: ${known.join(", ")})` };
    if (this.runs >= DEBUG_LIMITS.runsMax) return { ok: false, error: `${DEBUG_LIMITS.runsMax} debug commands are running already (the most at once); try again when one has ended` };
    this.runs++;
    try {
      return argv === null ? this.snapshot(request, pool, worker) : await this.run(request, pool, worker, argv, stream);
    } finally {
      this.runs--;
    }
  }

  private findWorker(request: DebugRequest): Found {
    const pools = activePools(this.state);
    // Worker ids run over every slot of a pool (not only replicas), as for ctl restart.
    const resolved = resolveTarget(request.target, pools.map((pool) => ({ name: pool.config.name, replicas: pool.workers.length })));
    if (!resolved.ok) return resolved;
    const { pool: name, worker: index } = resolved.value;
    if (index === null) return { ok: false, error: `${name} is a pool: name one of its workers, e.g. ${name}/0` };
    const pool = pools.find((candidate) => candidate.config.name === name);
    const worker = pool?.workers[index];
    if (pool === undefined || worker === undefined) return { ok: false, error: `no worker ${name}/${index}` };
    if (worker.pid === null || !isLive(worker)) return { ok: false, error: `worker ${worker.id} is not running (${worker.status})` };
    return { ok: true, pool, worker: worker as WorkerState & { pid: number } };
  }

  private snapshot(request: DebugRequest, pool: PoolState, worker: WorkerState & { pid: number }): ControlResult {
    const startedMs = performance.now();
    const snapshot = takeProcSnapshot({ pool: pool.config.name, workerId: worker.id, pid: worker.pid });
    this.options.report("info", "Debug snapshot taken", {
      pool: pool.config.name, worker_id: worker.id, pid: worker.pid, name: PROC_SNAPSHOT_NAME, processes: snapshot.processes.length,
      duration_ms: Math.round(performance.now() - startedMs), ...this.requester(request.clientPid),
    });
    return { ok: true, result: { name: PROC_SNAPSHOT_NAME, snapshot } };
  }

  private async run(request: DebugRequest, pool: PoolState, worker: WorkerState & { pid: number }, templates: readonly string[], stream: ControlStream): Promise<ControlResult> {
    const port = workerPort(pool.config, worker.index);
    const values = { Pid: worker.pid, WorkerId: worker.id, Port: port ?? "" };
    const argv: string[] = [];
    for (const arg of templates) {
      const template = parseTemplate(arg, ["Pid", "WorkerId", "Port"]);
      if (!template.ok) return { ok: false, error: `debug.${request.name}: ${template.error}` };
      // The config check refuses {{.Port}} in supervisor mode; a config built in code may still have it.
      if (template.fields.has("Port") && port === null) return { ok: false, error: `debug.${request.name} uses {{.Port}}, but pool ${pool.config.name}'s workers have no port of their own (supervisor mode)` };
      argv.push(template.render(values));
    }
    const fields = { pool: pool.config.name, worker_id: worker.id, pid: worker.pid, name: request.name, argv, ...this.requester(request.clientPid) };
    const outcome = await runDebugCommand({ argv, env: this.env, timeoutMs: request.timeoutMs, signal: stream.signal, onLine: (which, text) => stream.output(which, text) });
    if (!outcome.started) {
      this.options.report("warn", "Debug command could not be started", { ...fields, error: outcome.error });
      return { ok: false, error: outcome.error };
    }
    const continued = outcome.stopped === null ? false : this.continueIfLeftStopped(worker.pid);
    const result = {
      name: request.name, argv, pid: outcome.pid, exit_code: outcome.exitCode, signal: outcome.signal, exited: outcome.exited, stopped: outcome.stopped,
      timeout_ms: request.timeoutMs, duration_ms: outcome.durationMs, output_bytes: outcome.outputBytes, truncated: outcome.truncated, worker_continued: continued,
    };
    // The worker's pid is `pid` in the record, as in every worker record; the command's is command_pid.
    const { pid: commandPid, ...logged } = result;
    this.options.report(outcome.stopped === null ? "info" : "warn", debugMessage(outcome), { ...fields, ...logged, command_pid: commandPid });
    return { ok: true, result };
  }

  /**
   * A tracer (gdb, eu-stack) killed while attached may leave the worker stopped (state T) for ever:
   * it is sent SIGCONT, and the record says so. A worker never stops itself in normal work.
   */
  private continueIfLeftStopped(workerPid: number): boolean {
    const stopped = groupStates(workerPid).filter(({ state }) => state === "T");
    if (stopped.length === 0) return false;
    try {
      process.kill(-workerPid, "SIGCONT");
    } catch {
      return false;
    }
    this.options.report("warn", "A stopped debug command left the worker stopped; SIGCONT sent to its group", { pid: workerPid, stopped_pids: stopped.map(({ pid }) => pid) });
    return true;
  }

  async profile(request: ProfileRequest, stream: ControlStream): Promise<ControlResult> {
    if (this.profiling) return { ok: false, error: "a profile is being taken already (one at a time); try again when it is done" };
    this.profiling = true;
    const startedMs = performance.now();
    const fields = { kind: request.kind, ...(request.durationMs === null ? {} : { duration_ms: request.durationMs }), ...this.requester(request.clientPid) };
    try {
      const sent = request.kind === "cpu" ? await this.sendCpuProfile(request.durationMs ?? DEBUG_LIMITS.profileDurationMsMin, stream) : await this.sendHeapSnapshot(stream);
      const tookMs = Math.round(performance.now() - startedMs);
      if (!sent.ok) {
        this.options.report("warn", "Profile not taken or not sent", { ...fields, error: sent.error, took_ms: tookMs });
        return sent;
      }
      this.options.report("info", "Profile taken and sent", { ...fields, bytes: sent.bytes, took_ms: tookMs });
      return { ok: true, result: { kind: request.kind, duration_ms: request.durationMs, bytes: sent.bytes, took_ms: tookMs, pid: process.pid } };
    } finally {
      this.profiling = false;
    }
  }

  private async sendCpuProfile(durationMs: number, stream: ControlStream): Promise<{ ok: true; bytes: number } | { ok: false; error: string }> {
    const taken = await takeCpuProfile(durationMs, stream.signal);
    if (!taken.ok) return taken;
    const sent = await sendText(taken.value, (piece) => stream.data(piece), stream.signal, performance.now() + DEBUG_LIMITS.profileTransferMsMax);
    return sent ? { ok: true, bytes: Buffer.byteLength(taken.value, "utf8") } : { ok: false, error: notSent(stream) };
  }

  private async sendHeapSnapshot(stream: ControlStream): Promise<{ ok: true; bytes: number } | { ok: false; error: string }> {
    const taken = await takeHeapSnapshot();
    if (!taken.ok) return taken;
    try {
      const sent = await sendFile(taken.value, (piece) => stream.data(piece), stream.signal, performance.now() + DEBUG_LIMITS.profileTransferMsMax);
      return sent ? { ok: true, bytes: taken.value.bytes } : { ok: false, error: notSent(stream) };
    } finally {
      closeSync(taken.value.fd);
    }
  }
}

function notSent(stream: ControlStream): string {
  return stream.signal.aborted ? "ctl went away before it had the whole profile" : `ctl did not take the profile within ${DEBUG_LIMITS.profileTransferMsMax / 1000} s`;
}

function debugMessage(outcome: Extract<DebugCommandOutcome, { started: true }>): string {
  switch (outcome.stopped) {
    case null:
      return "Debug command ran";
    case "timeout":
      return "Debug command stopped at its timeout";
    case "output":
      return "Debug command stopped: its output passed the limit";
    case "client":
      return "Debug command stopped: ctl went away";
  }
}
