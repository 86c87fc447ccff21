import { constants } from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { handleSignals, handledSignals, profilerRequested, SIGNAL_MEANINGS, signalRecord, type HandledSignal } from "../../../src/cli/signals.js";

/** The kernel's default action for each signal (signal(7)). */
const LINUX_DEFAULT_ACTION: Record<string, "term" | "core" | "stop" | "ignore" | "continue"> = {
  SIGHUP: "term", SIGINT: "term", SIGQUIT: "core", SIGILL: "core", SIGTRAP: "core", SIGABRT: "core", SIGIOT: "core",
  SIGBUS: "core", SIGFPE: "core", SIGKILL: "term", SIGUSR1: "term", SIGSEGV: "core", SIGUSR2: "term", SIGPIPE: "term",
  SIGALRM: "term", SIGTERM: "term", SIGCHLD: "ignore", SIGSTKFLT: "term", SIGCONT: "continue", SIGSTOP: "stop",
  SIGTSTP: "stop", SIGTTIN: "stop", SIGTTOU: "stop", SIGURG: "ignore", SIGXCPU: "core", SIGXFSZ: "core",
  SIGVTALRM: "term", SIGPROF: "term", SIGWINCH: "ignore", SIGIO: "term", SIGPOLL: "term", SIGPWR: "term", SIGSYS: "core",
};

/** The signals deliberately left alone, each with its reason (the README says the same). */
const LEFT_ALONE: Record<string, string> = {
  SIGKILL: "cannot be caught",
  SIGSTOP: "cannot be caught",
  SIGPIPE: "Node ignores it: a reader that went away is an EPIPE on that stream",
  SIGSEGV: "a real fault: the crash is the right outcome",
  SIGBUS: "a real fault",
  SIGFPE: "a real fault",
  SIGILL: "a real fault",
  SIGABRT: "abort(): the crash and its core dump are the right outcome",
  SIGIOT: "the same signal as SIGABRT",
  SIGPOLL: "the same signal as SIGIO, which is handled",
};

const released: (() => void)[] = [];
afterEach(() => {
  for (const release of released.splice(0)) release();
});

function listen() {
  const shutdowns: string[] = [];
  const records: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const stop = handleSignals({ shutdown: (signal) => shutdowns.push(signal), log: (level, msg, fields) => records.push({ level, msg, fields }) });
  released.push(stop);
  return { shutdowns, records, stop };
}

describe("what each signal means", () => {
  it("gives every catchable signal whose default would end or stop Monoceros a meaning", () => {
    for (const signal of Object.keys(constants.signals)) {
      const action = LINUX_DEFAULT_ACTION[signal];
      expect(action, `${signal} has a known default action`).toBeDefined();
      if (action === "ignore" || action === "continue") continue;
      const handled = signal in SIGNAL_MEANINGS;
      expect(handled !== (signal in LEFT_ALONE), `${signal}: handled, or left alone for a stated reason`).toBe(true);
    }
  });

  it("shuts down on SIGTERM, SIGINT and SIGQUIT; SIGHUP is the reload signal; the rest are only reported", () => {
    const shutdown = Object.entries(SIGNAL_MEANINGS).filter(([, meaning]) => meaning === "shutdown").map(([signal]) => signal);
    expect(shutdown.sort()).toEqual(["SIGINT", "SIGQUIT", "SIGTERM"]);
    expect(SIGNAL_MEANINGS.SIGHUP).toBe("reload");
    // Before the workers started (no reload target yet) it is only reported.
    expect(signalRecord("SIGHUP", 1)).toEqual({ msg: "Signal received before the workers started; ignored", fields: { signal: "SIGHUP", count: 1 } });
    expect(signalRecord("SIGUSR1", 3)).toEqual({ msg: "Signal received and ignored: it means nothing to Monoceros", fields: { signal: "SIGUSR1", count: 3 } });
    expect(handledSignals()).toEqual(Object.keys(SIGNAL_MEANINGS)); // all of them exist on Linux
    // Under node --cpu-prof (or --prof) SIGPROF is the profiler's tick: left alone.
    expect(handledSignals(true)).toEqual(Object.keys(SIGNAL_MEANINGS).filter((signal) => signal !== "SIGPROF"));
    expect(profilerRequested(["--cpu-prof"], "")).toBe(true);
    expect(profilerRequested([], "--max-old-space-size=100 --prof")).toBe(true);
    expect(profilerRequested(["--cpu-prof-dir=/tmp"], "--profile")).toBe(false);
  });
});

describe("signal wiring", () => {
  // process.emit runs the listeners without a real signal (a real one would end this test worker
  // if a listener were missing); the integration tests send real ones to dist/monoceros.
  it("routes a shutdown signal to the target and reports the others", () => {
    expect(process.listenerCount("SIGQUIT")).toBe(0);
    const { shutdowns, records } = listen();
    process.emit("SIGQUIT" as never);
    process.emit("SIGHUP" as never);
    process.emit("SIGTSTP" as never);
    expect(shutdowns).toEqual(["SIGQUIT"]);
    expect(records.map((r) => [r.level, r.fields.signal, r.fields.count])).toEqual([["warn", "SIGHUP", 1], ["warn", "SIGTSTP", 1]]);
  });

  it("writes one record for a storm of one signal, and the count of the rest when it stops", () => {
    const { records, stop } = listen();
    for (let i = 0; i < 500; i++) process.emit("SIGUSR2" as never);
    expect(records).toHaveLength(1);
    stop();
    expect(records.map((r) => r.fields)).toEqual([{ signal: "SIGUSR2", count: 1 }, { signal: "SIGUSR2", count: 499 }]);
  });

  it("when stopped, gives the signals back to Node's defaults, except SIGUSR1 and SIGXFSZ, which stay ignored", () => {
    const before = new Map(handledSignals().map((signal) => [signal, process.listenerCount(signal)]));
    const { stop } = listen();
    stop();
    for (const signal of handledSignals()) {
      const kept: HandledSignal[] = ["SIGUSR1", "SIGXFSZ"];
      const expected = kept.includes(signal) ? Math.max(1, before.get(signal) ?? 0) : (before.get(signal) ?? 0);
      expect(process.listenerCount(signal), signal).toBe(expected);
    }
  });
});
