// What every signal means to a running Monoceros, in one table, and the wiring from the process's
// signals to it. Node's defaults do not suit a supervisor: SIGHUP, SIGQUIT, SIGUSR2 and a dozen
// others end the process at once (its orphan watchdog then SIGKILLs every worker, with no drain),
// SIGTSTP stops it, and SIGUSR1 opens the inspector (anyone on the host could run code inside
// Monoceros). So every catchable signal whose default would end or stop the process has a meaning
// here. Not listed, on purpose: SIGKILL and SIGSTOP (cannot be caught); SIGSEGV, SIGBUS, SIGFPE,
// SIGILL and SIGABRT (a real fault or abort: the crash and its core dump are the right outcome);
// SIGPIPE (Node ignores it already: a reader that went away shows up as EPIPE on that stream);
// SIGCHLD, SIGCONT, SIGURG and SIGWINCH (ignored by default); the real-time signals (Node cannot
// listen to them).
import { constants } from "node:os";
import { LimitedRecords } from "../logs/record-limiter.js";

export type SignalMeaning =
  /** Graceful shutdown: the runtime gets {type: "shutdownRequested", signal}. */
  | "shutdown"
  /** Reload the config (as `monoceros ctl reload`); before the workers started, a record says it is ignored. */
  | "reload"
  /** gunicorn's convention: SIGTTIN adds a worker to every pool, SIGTTOU removes one (never below 0). */
  | "scaleUp"
  | "scaleDown"
  /** A record naming the signal, and nothing else. */
  | "ignore";

export const SIGNAL_MEANINGS = {
  SIGTERM: "shutdown",
  SIGINT: "shutdown",
  SIGQUIT: "shutdown",
  SIGHUP: "reload",
  // Without a listener, SIGUSR1 opens Node's inspector on 127.0.0.1:9229 (dist/monoceros's loader
  // listens from its first line, before this module is loaded).
  SIGUSR1: "ignore",
  SIGUSR2: "ignore",
  SIGALRM: "ignore",
  SIGVTALRM: "ignore",
  SIGPROF: "ignore",
  // Also SIGPOLL: the same signal number; one listener, or each delivery would be reported twice.
  SIGIO: "ignore",
  SIGPWR: "ignore",
  SIGSTKFLT: "ignore",
  // Sent every second once the CPU-time soft limit (ulimit -t) is passed; SIGKILL follows at the hard limit.
  SIGXCPU: "ignore",
  // Node ignores it already (a write past ulimit -f fails with EFBIG); listed so it is reported.
  SIGXFSZ: "ignore",
  SIGTRAP: "ignore",
  SIGSYS: "ignore",
  // Their default stops the process: a stopped supervisor restarts nothing and answers nothing.
  SIGTSTP: "ignore",
  SIGTTIN: "scaleUp",
  SIGTTOU: "scaleDown",
} as const satisfies Partial<Record<NodeJS.Signals, SignalMeaning>>;

export type HandledSignal = keyof typeof SIGNAL_MEANINGS;

/**
 * Signals whose listener is never removed: without one, Node's default for them is worse than
 * doing nothing (SIGUSR1 would open the inspector again, and removing a listener resets the
 * signal to the kernel's default, which ends the process for both).
 */
const KEEP_LISTENING: ReadonlySet<string> = new Set(["SIGUSR1", "SIGXFSZ"]);

/** At most one record per signal per this interval; the rest are counted in the next record. */
export const SIGNAL_RECORD_INTERVAL_MS = 1_000;

export interface SignalTarget {
  shutdown(signal: HandledSignal): void;
  /** +1 or −1 worker in every pool (SIGTTIN, SIGTTOU); before the workers start, a record says it is ignored. */
  scale?(delta: 1 | -1): void;
  /** Re-read the config (SIGHUP). */
  reload?(): void;
  log(level: "info" | "warn", msg: string, fields: Record<string, unknown>): void;
}

/** The record written for a signal that is not a shutdown; `count` deliveries since the last one. */
export function signalRecord(signal: HandledSignal, count: number): { msg: string; fields: Record<string, unknown> } {
  const meaning: SignalMeaning = SIGNAL_MEANINGS[signal];
  const msg = meaning === "reload" || meaning === "scaleUp" || meaning === "scaleDown"
      ? "Signal received before the workers started; ignored"
      : "Signal received and ignored: it means nothing to Monoceros";
  return { msg, fields: { signal, count } };
}

/** V8's sampling profiler (node --cpu-prof or --prof) ticks with SIGPROF: a listener would take its signal. */
export function profilerRequested(execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ""): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => /^--(cpu-prof|prof)(=|$)/.test(arg));
}

/** The handled signals this platform has (SIGSTKFLT and SIGPWR are Linux's); SIGPROF is left to a profiler that was asked for. */
export function handledSignals(profiling: boolean = profilerRequested()): HandledSignal[] {
  const known: Record<string, number | undefined> = constants.signals;
  return (Object.keys(SIGNAL_MEANINGS) as HandledSignal[]).filter((signal) => known[signal] !== undefined && !(profiling && signal === "SIGPROF"));
}

/**
 * Listens to every signal in SIGNAL_MEANINGS until the returned function is called; then the
 * signals have Node's defaults again, except those in KEEP_LISTENING, which stay ignored.
 */
export function handleSignals(target: SignalTarget): () => void {
  const records = new LimitedRecords(SIGNAL_RECORD_INTERVAL_MS, (signal, count) => {
    const { msg, fields } = signalRecord(signal as HandledSignal, count);
    target.log("warn", msg, fields);
  });
  const listeners = handledSignals().map((signal) => {
    const listener = () => {
      const meaning: SignalMeaning = SIGNAL_MEANINGS[signal];
      if (meaning === "shutdown") target.shutdown(signal);
      else if ((meaning === "scaleUp" || meaning === "scaleDown") && target.scale !== undefined) target.scale(meaning === "scaleUp" ? 1 : -1);
      else if (meaning === "reload" && target.reload !== undefined) target.reload();
      else records.note(signal);
    };
    process.on(signal, listener);
    return [signal, listener] as const;
  });
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    for (const [signal, listener] of listeners) {
      if (KEEP_LISTENING.has(signal) && process.listenerCount(signal) === 1) {
        // The last listener: replaced by one that does nothing, never removed.
        process.on(signal, ignore);
      }
      process.off(signal, listener);
    }
    records.close();
  };
}

function ignore(): void {}
