// Real processes: spawned without a shell, each in its own process group (so signals reach a
// worker's children too), output forwarded line by line, exit reported only once everything
// the worker wrote has been forwarded.
import { spawn } from "node:child_process";
import type { Signal } from "../../domain/types.js";
import type { LogChannels } from "../../logs/worker-output.js";
import { forwardStream } from "../../logs/worker-output.js";
import { forgetProcess, readProcessStats } from "../../metrics/process-stats.js";
import type { BackendEvent, ProcessBackend, ProcessStats, SpawnRequest } from "../../runtime/ports.js";
import { Watchdog } from "./watchdog.js";

export interface OsBackendOptions {
  channels: LogChannels;
  maxLineBytes?: number;
  /** After a worker exits, how long its pipes may stay open (held by its children) before the exit is reported anyway. */
  pipeDrainTimeoutMs?: number;
  onLogCollision?: () => void;
  onProblem: (message: string) => void;
}

const PIPE_DRAIN_TIMEOUT_MS_DEFAULT = 2_000;

export class OsBackend implements ProcessBackend {
  private sink: (event: BackendEvent) => void = () => {};
  /** Also the one list of live workers' process groups (a worker's pid is its group id). */
  private readonly watchdog: Watchdog;

  constructor(private readonly options: OsBackendOptions) {
    this.watchdog = new Watchdog(options.onProblem);
    this.watchdog.start();
  }

  attach(sink: (event: BackendEvent) => void): void {
    this.sink = sink;
  }

  spawn(request: SpawnRequest): void {
    const { ref } = request;
    let child;
    try {
      child = spawn(request.exec, [...request.args], {
        env: { ...process.env, ...request.env },
        detached: true, // setsid(): its own session and process group
        stdio: ["ignore", "pipe", "pipe"],
      });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "ESPAWN";
      const message = error instanceof Error ? error.message : String(error);
      queueMicrotask(() => this.sink({ type: "spawnFailed", ref, errorCode: code, message }));
      return;
    }
    // Registered with the watchdog at once (the pid is known as soon as spawn() returns), not on
    // the "spawn" event a tick later: a Monoceros killed in between would otherwise orphan it.
    if (child.pid !== undefined) this.watchdog.add(child.pid);
    let spawned = false;
    let exit: { code: number | null; signal: string | null } | null = null;
    let openPipes = 2;
    let drainTimer: NodeJS.Timeout | null = null;
    const reportExit = () => {
      if (exit === null) return;
      const pid = child.pid as number;
      if (drainTimer !== null) clearTimeout(drainTimer);
      this.watchdog.remove(pid);
      forgetProcess(pid);
      const { code, signal } = exit;
      exit = null;
      this.sink({ type: "exited", ref, code, signal });
    };
    child.once("spawn", () => {
      spawned = true;
      this.sink({ type: "spawned", ref, pid: child.pid as number });
    });
    child.once("error", (error: NodeJS.ErrnoException) => {
      if (spawned) return; // e.g. a failed kill(); the exit is reported by "exit"
      this.sink({ type: "spawnFailed", ref, errorCode: error.code ?? "ESPAWN", message: error.message });
    });
    for (const [readable, stream] of [[child.stdout, "stdout"], [child.stderr, "stderr"]] as const) {
      forwardStream(readable, stream, request.workerId, this.options.channels, {
        maxLineBytes: this.options.maxLineBytes,
        onCollision: this.options.onLogCollision,
      });
      readable.once("close", () => {
        openPipes--;
        if (openPipes === 0) reportExit();
      });
    }
    child.once("exit", (code, signal) => {
      if (!spawned) return;
      exit = { code, signal };
      if (openPipes === 0) reportExit();
      // A child of the worker may hold its pipes open; do not wait on it for ever.
      else drainTimer = setTimeout(reportExit, this.options.pipeDrainTimeoutMs ?? PIPE_DRAIN_TIMEOUT_MS_DEFAULT);
    });
  }

  signal(pid: number, signal: Signal): void {
    try {
      process.kill(-pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") return; // already gone
      try {
        process.kill(pid, signal);
      } catch {
        // gone, or not ours to signal: its exit (or the lack of it) is the core's business
      }
    }
  }

  stats(pid: number): ProcessStats | null {
    return readProcessStats(pid);
  }

  /** Last resort on an unexpected crash of Monoceros: SIGKILL every worker group now. */
  killAllNow(): void {
    for (const pid of this.watchdog.liveGroups()) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  close(): void {
    this.watchdog.stop();
  }
}
