// How processbin ends: on --exit-after / --exit-after-logs (exit code or self-inflicted signal),
// or on SIGTERM/SIGINT (wait --signal-timeout, then 143/130 as the original), unless ignored.
import type { Server } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { closeServer, type HttpState } from "./http.js";
import type { Output } from "./output.js";
import { formatSeconds, signalNumber } from "./units.js";

/** The original's exit codes: 128 + signal number, what a shell reports for a signal death. */
export const SIGNAL_EXIT_CODES: Readonly<Record<"SIGTERM" | "SIGINT", number>> = { SIGTERM: 143, SIGINT: 130 };

// In-flight HTTP requests may hold the exit this long past the signal: enough for the longest
// /slow request (60s), yet bounded so a stuck client cannot keep the process alive.
const SIGNAL_DRAIN_MAX_MS = 65_000;
// On --exit-after the original also shut the server down gracefully; keep that short.
const EXIT_DRAIN_MAX_MS = 5000;
// Flushing stdout/stderr before exit must not hang on a reader that stopped reading.
const FLUSH_MAX_MS = 2000;
// If the signal did not end us (Node handles a few itself, e.g. SIGUSR1), exit as if it had.
const SELF_KILL_FALLBACK_MS = 1000;

export interface LifecycleSettings {
  readonly exitCode: number;
  readonly exitSignal: NodeJS.Signals | undefined;
  readonly ignoreSignals: boolean;
  readonly signalTimeoutMs: number;
}

export class Lifecycle {
  private exiting = false;
  private http: { server: Server; state: HttpState } | undefined;

  constructor(
    private readonly settings: LifecycleSettings,
    private readonly output: Output,
    /** Aborted when processbin starts to exit, so no log line is written after the exit message. */
    private readonly stopWork: AbortController,
  ) {}

  attachServer(server: Server, state: HttpState): void {
    this.http = { server, state };
  }

  /** Installs SIGTERM/SIGINT handlers. */
  handleSignals(): void {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.on(signal, () => void this.onSignal(signal));
    }
  }

  private async onSignal(signal: "SIGTERM" | "SIGINT"): Promise<void> {
    if (this.settings.ignoreSignals) {
      await this.output.event(`Caught ${signal}, ignoring it (--ignore-signals)`);
      return;
    }
    // A second signal while already exiting changes nothing, as in the original.
    if (!this.begin()) return;
    await this.output.event(`Caught ${signal}, waiting for ${formatSeconds(this.settings.signalTimeoutMs)} seconds before exiting`);
    await Promise.all([sleep(this.settings.signalTimeoutMs), this.closeHttp(SIGNAL_DRAIN_MAX_MS)]);
    await this.exitWithCode(SIGNAL_EXIT_CODES[signal]);
  }

  /** --exit-after fired or --exit-after-logs finished: exit with --exit-code, or die by --exit-signal. */
  async finish(): Promise<void> {
    if (!this.begin()) return;
    const signal = this.settings.exitSignal;
    if (signal !== undefined) {
      // A crash does not drain connections; only make sure the lines written so far are out.
      await this.output.flush(FLUSH_MAX_MS);
      killSelf(signal);
      return;
    }
    await this.closeHttp(EXIT_DRAIN_MAX_MS);
    await this.exitWithCode(this.settings.exitCode);
  }

  private begin(): boolean {
    if (this.exiting) return false;
    this.exiting = true;
    this.stopWork.abort();
    return true;
  }

  private closeHttp(maxWaitMs: number): Promise<void> {
    return this.http === undefined ? Promise.resolve() : closeServer(this.http.server, this.http.state, maxWaitMs);
  }

  private async exitWithCode(code: number): Promise<void> {
    await this.output.flush(FLUSH_MAX_MS);
    process.exit(code);
  }
}

function killSelf(signal: NodeJS.Signals): void {
  // Our own handlers (SIGTERM, SIGINT) would otherwise catch it; without them the default action,
  // death by that signal, applies.
  process.removeAllListeners(signal);
  setTimeout(() => process.exit(128 + signalNumber(signal)), SELF_KILL_FALLBACK_MS);
  process.kill(process.pid, signal);
}
