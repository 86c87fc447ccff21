// The orphan watchdog itself: a start that fails because sh is not there is said once, not
// retried for ever; a killed watchdog is restarted (see faults.test.ts for the delays); when its
// input ends (Monoceros died) or at a stop, it kills exactly the process groups still listed.
import { spawn, type ChildProcess } from "node:child_process";
import type { Writable } from "node:stream";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Watchdog } from "../../src/backends/os/watchdog.js";
import { isAlive, pollFor } from "../support/monoceros.js";

const started: Watchdog[] = [];
const groups: ChildProcess[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const watchdog of started.splice(0)) watchdog.stop();
  for (const child of groups.splice(0)) {
    try {
      process.kill(-(child.pid as number), "SIGKILL");
    } catch {
      // gone already
    }
  }
});

/** A process group of one `sleep`, as a worker's; its pid is its pgid. */
function sleepingGroup(): number {
  const child = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
  groups.push(child);
  return child.pid as number;
}

async function runningWatchdog(): Promise<Watchdog> {
  const watchdog = new Watchdog(() => {}, "MONOCEROS_INSTANCE_ID=test");
  started.push(watchdog);
  watchdog.start();
  await pollFor("a running watchdog", () => watchdog.pid, 5_000);
  return watchdog;
}

/** Ends the watchdog's input without a word more, as Monoceros's death does: it kills every group still listed. */
function cutInput(watchdog: Watchdog): void {
  ((watchdog as unknown as { process: { stdin: Writable } }).process.stdin).destroy();
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

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

  it("kills, when its input ends, the groups added and not removed, in the order they were told (a pgid removed and added again is watched)", async () => {
    const watchdog = await runningWatchdog();
    const [kept, removed, removedThenAdded] = [sleepingGroup(), sleepingGroup(), sleepingGroup()];
    for (const pgid of [kept, removed, removedThenAdded]) watchdog.add(pgid);
    watchdog.remove(removed);
    watchdog.remove(removedThenAdded);
    watchdog.add(removedThenAdded); // a pgid reused: watched again
    expect([...watchdog.liveGroups()].sort()).toEqual([kept, removedThenAdded].sort());
    await nextTurn();
    cutInput(watchdog);
    await pollFor("the listed groups killed", () => !isAlive(kept) && !isAlive(removedThenAdded), 10_000);
    expect(isAlive(removed)).toBe(true);
  });

  it("kills at a stop only the groups still listed", async () => {
    const watchdog = await runningWatchdog();
    const [kept, removed] = [sleepingGroup(), sleepingGroup()];
    watchdog.add(kept);
    watchdog.add(removed);
    watchdog.remove(removed);
    watchdog.stop();
    await pollFor("the listed group killed", () => !isAlive(kept), 10_000);
    expect(isAlive(removed)).toBe(true);
  });
});

