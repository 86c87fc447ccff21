// Fake processes driven by scripts, on a virtual clock: they exit when told, ignore SIGTERM,
// take their time, fail to spawn. What they do is decided per spawn by the scenario.
import type { Signal } from "../../domain/types.js";
import type { BackendEvent, ProcessBackend, ProcessStats, SpawnRequest } from "../../runtime/ports.js";
import type { VirtualClock } from "./virtual-clock.js";

export type SigtermBehaviour =
  | { kind: "exit"; afterMs: number; code: number | null; signal: string | null }
  | { kind: "ignore" };

export interface FakeProcessScript {
  /** Spawning fails with this error code (ENOENT, EAGAIN, EMFILE, ENOMEM…). */
  spawnError?: string;
  /** Exits by itself this long after starting; null runs until signalled. */
  exitAfterMs: number | null;
  exitCode: number | null;
  exitSignal: string | null;
  onSigterm: SigtermBehaviour;
  /** Resident memory at start, and how fast it grows (a leaking worker). */
  rssBytes?: number;
  rssGrowthBytesPerSecond?: number;
  /** Health checks fail from this long after start on (undefined: always healthy). */
  unhealthyAfterMs?: number;
  /** Lines written to stdout right after start (for log tests). */
  lines?: readonly string[];
}

/** Decides what the n-th spawn (0-based, across the backend) will do. */
export type ScriptFor = (request: SpawnRequest, spawnIndex: number) => FakeProcessScript;

export interface FakeProcess {
  readonly pid: number;
  readonly request: SpawnRequest;
  readonly script: FakeProcessScript;
  readonly startedAtMs: number;
  alive: boolean;
  sigtermAtMs: number | null;
  sigkillAtMs: number | null;
}

export class MemoryBackend implements ProcessBackend {
  private sink: (event: BackendEvent) => void = () => {};
  private nextPid = 1000;
  private spawnCount = 0;
  private readonly processes = new Map<number, FakeProcess>();
  /** Every line a fake process wrote, in order (bounded by the scripts the scenario gives). */
  readonly output: { workerId: string; line: string }[] = [];

  constructor(
    private readonly clock: VirtualClock,
    private readonly scriptFor: ScriptFor,
    private readonly spawnLatencyMs = 0,
  ) {}

  attach(sink: (event: BackendEvent) => void): void {
    this.sink = sink;
  }

  spawn(request: SpawnRequest): void {
    const script = this.scriptFor(request, this.spawnCount++);
    this.later(this.spawnLatencyMs, () => {
      if (script.spawnError !== undefined) {
        this.sink({ type: "spawnFailed", ref: request.ref, errorCode: script.spawnError, message: `spawn ${request.exec} ${script.spawnError}` });
        return;
      }
      const process: FakeProcess = {
        pid: this.nextPid++, request, script, startedAtMs: this.clock.nowMs(), alive: true, sigtermAtMs: null, sigkillAtMs: null,
      };
      this.processes.set(process.pid, process);
      for (const line of script.lines ?? []) this.output.push({ workerId: request.workerId, line });
      this.sink({ type: "spawned", ref: request.ref, pid: process.pid });
      if (script.exitAfterMs !== null) this.later(script.exitAfterMs, () => this.exit(process, script.exitCode, script.exitSignal));
    });
  }

  signal(pid: number, signal: Signal): void {
    const process = this.processes.get(pid);
    if (process === undefined || !process.alive) return;
    if (signal === "SIGKILL") {
      process.sigkillAtMs ??= this.clock.nowMs();
      this.later(0, () => this.exit(process, null, "SIGKILL"));
      return;
    }
    process.sigtermAtMs ??= this.clock.nowMs();
    const behaviour = process.script.onSigterm;
    if (behaviour.kind === "exit") this.later(behaviour.afterMs, () => this.exit(process, behaviour.code, behaviour.signal));
  }

  stats(pid: number): ProcessStats | null {
    const process = this.processes.get(pid);
    if (process === undefined || !process.alive) return null;
    const ranSeconds = (this.clock.nowMs() - process.startedAtMs) / 1000;
    return {
      cpuSeconds: 0,
      rssBytes: (process.script.rssBytes ?? 10 * 1024 * 1024) + Math.round((process.script.rssGrowthBytesPerSecond ?? 0) * ranSeconds),
      virtualMemoryBytes: 100 * 1024 * 1024,
      openFds: 8,
      maxFds: 1024,
      virtualMemoryMaxBytes: null,
      startTimeSeconds: process.startedAtMs / 1000,
    };
  }

  /** Whether the process would pass a health check now; null if it is gone. */
  healthy(pid: number): boolean | null {
    const process = this.processes.get(pid);
    if (process === undefined || !process.alive) return null;
    const failAfterMs = process.script.unhealthyAfterMs;
    return failAfterMs === undefined || this.clock.nowMs() - process.startedAtMs < failAfterMs;
  }

  /** Processes that exist right now: the ground truth the simulator checks the core against. */
  alive(): IterableIterator<FakeProcess> {
    return this.processes.values();
  }

  private exit(process: FakeProcess, code: number | null, signal: string | null): void {
    if (!process.alive) return;
    process.alive = false;
    this.processes.delete(process.pid);
    this.sink({ type: "exited", ref: process.request.ref, code, signal, groupEmpty: true, outputClosed: true });
  }

  private later(delayMs: number, action: () => void): void {
    this.clock.setTimer(this.clock.nowMs() + delayMs, action);
  }
}
