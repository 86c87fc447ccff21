// Found by the simulator: the core signalled process groups it had been told were empty, or
// processes it had already handled. A pid is reused once its process and group are gone, so such a
// signal can reach a stranger (the OS backend even falls back from the group to the pid itself).
import { describe, expect, it } from "vitest";
import { harness, pool, runsForever } from "../../support/harness.js";

const exitsOnSigtermWithOutputHeld = { ...runsForever, onSigterm: { kind: "exit", afterMs: 10, code: 143, signal: null } as const, outputHeldAfterExitMs: 60_000 };

describe("signals only reach groups that may still have processes", () => {
  it("sends no SIGKILL at signal_timeout to a worker whose group was reported empty while its output is still open", () => {
    const h = harness([pool({ replicas: 1, signalTimeoutMs: 100 })], () => exitsOnSigtermWithOutputHeld);
    h.runUntil(1_000);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(h.runToExit()).toBe(0);
    expect(h.signals().map(({ atMs, signal }) => [atMs, signal])).toEqual([[1_000, "SIGTERM"]]);
    expect(h.metrics.filter((m) => m.metric === "sigkill")).toEqual([]);
    expect(h.clock.nowMs()).toBe(1_010 + 2_000); // released when the output wait ends
  });

  it("sends no SIGKILL on a third signal to a worker whose group was reported empty", () => {
    const h = harness([pool({ replicas: 1, signalTimeoutMs: 10_000 })], () => exitsOnSigtermWithOutputHeld);
    h.runUntil(1_000);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    h.runUntil(1_500); // exited at 1,010, its output still open
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(h.runToExit()).toBe(0);
    expect(h.signals()).toEqual([{ atMs: 1_000, workerId: "web-0", signal: "SIGTERM" }]);
  });

  it("ignores a second report that a process started, for an old incarnation or the current one", () => {
    const h = harness([pool({ replicas: 1, maxRestarts: 5 })], (_request, index) =>
      index === 0 ? { ...runsForever, exitAfterMs: 100, staleReplays: [{ event: "spawned", afterMs: 50 }] } : runsForever);
    h.runUntil(1_000); // web-0#1 exited at 100 and #2 started at once; #1's spawned came again 50 ms later
    const started = h.events.filter(({ event }) => event.type === "spawned");
    expect(started.map(({ atMs, event }) => [atMs, event.type === "spawned" && event.ref.generation])).toEqual([[0, 1], [100, 2], [150, 1]]);
    const current = started[1]?.event;
    if (current?.type !== "spawned") throw new Error("no second incarnation");
    h.runtime.dispatch(current); // the current incarnation reported again
    h.runUntil(2_000);
    expect(h.signals()).toEqual([]);
    expect(h.runtime.state.pools[0]?.workers[0]).toMatchObject({ status: "running", generation: 2, pid: current.pid });
  });
});
