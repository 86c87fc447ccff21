// The orphan watchdog itself: a failed start (no bash in PATH, EMFILE) is retried like a death,
// with the same growing delay, instead of leaving Monoceros without orphan protection.
import { afterEach, describe, expect, it } from "vitest";
import { Watchdog } from "../../src/backends/os/watchdog.js";
import { pollFor } from "../support/monoceros.js";

const started: Watchdog[] = [];
afterEach(() => {
  for (const watchdog of started.splice(0)) watchdog.stop();
});

describe("orphan watchdog", () => {
  it("retries a start that failed, after a delay, and runs once it can", async () => {
    const problems: string[] = [];
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    const watchdog = new Watchdog((message) => problems.push(message), "MONOCEROS_INSTANCE_ID=test");
    started.push(watchdog);
    try {
      watchdog.start();
      await pollFor("the failed start to be reported", () => problems.length >= 1, 5_000);
    } finally {
      process.env.PATH = path;
    }
    expect(problems[0]).toMatch(/^cannot start the orphan watchdog \(bash\): .*ENOENT.*; starting it again in 100 ms$/);
    const pid = await pollFor("a running watchdog", () => watchdog.pid, 5_000);
    expect(pid).toBeGreaterThan(0);
  });
});
