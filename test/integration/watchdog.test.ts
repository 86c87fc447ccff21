// The orphan watchdog itself: a start that fails because sh is not there is said once, not
// retried for ever; a killed watchdog is restarted (see faults.test.ts for the delays).
import { afterEach, describe, expect, it, vi } from "vitest";
import { Watchdog } from "../../src/backends/os/watchdog.js";
import { pollFor } from "../support/monoceros.js";

const started: Watchdog[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const watchdog of started.splice(0)) watchdog.stop();
});

describe("orphan watchdog", () => {
  it("says once that it cannot start without sh, and does not try again", async () => {
    const problems: string[] = [];
    const path = process.env.PATH;
    let reported = () => {};
    const firstProblem = new Promise<void>((resolve) => (reported = resolve));
    // Only setTimeout is faked: a retry would show as a pending timer.
    vi.useFakeTimers({ toFake: ["setTimeout"] });
    process.env.PATH = "/nonexistent";
    const watchdog = new Watchdog((message) => {
      problems.push(message);
      reported();
    }, "MONOCEROS_INSTANCE_ID=test");
    started.push(watchdog);
    try {
      watchdog.start();
      await firstProblem;
    } finally {
      process.env.PATH = path;
    }
    expect(problems).toEqual([expect.stringMatching(/^cannot start the orphan watchdog \(sh\): .*ENOENT.*; not trying again, so workers may outlive a killed Monoceros \(no sh in PATH\)$/)]);
    expect(vi.getTimerCount()).toBe(0);
    expect(watchdog.pid).toBeUndefined();
  });

  it("runs with sh and stops when told", async () => {
    const watchdog = new Watchdog(() => {}, "MONOCEROS_INSTANCE_ID=test");
    started.push(watchdog);
    watchdog.start();
    expect(await pollFor("a running watchdog", () => watchdog.pid, 5_000)).toBeGreaterThan(0);
  });
});
