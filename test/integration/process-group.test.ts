// What "nothing is left of a worker's group" means on a real kernel: zombies do not count (nobody
// reaps orphans where Monoceros is PID 1), a process whose main thread exited while its other
// threads run does (/proc shows it as Z too).
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { groupHasLiveMembers } from "../../src/backends/os/process-group.js";
import { pollFor } from "../support/monoceros.js";

const PROGRAM = `
#include <pthread.h>
#include <unistd.h>
static void *sleeper(void *arg) { (void)arg; for (;;) pause(); return 0; }
int main(void) { pthread_t t; pthread_create(&t, 0, sleeper, 0); pthread_exit(0); }
`;

describe("process group liveness", () => {
  it("counts a process whose main thread exited but whose other threads run as alive", async () => {
    const dir = mkdtempSync(join(tmpdir(), "monoceros-pg-"));
    writeFileSync(join(dir, "main-exits.c"), PROGRAM);
    execFileSync("cc", ["-O1", "-pthread", "-o", join(dir, "main-exits"), join(dir, "main-exits.c")]);
    const child = spawn(join(dir, "main-exits"), [], { detached: true, stdio: "ignore" });
    const pid = child.pid as number;
    try {
      await pollFor("its main thread to exit", () => /^State:\s+Z/m.test(execFileSync("cat", [`/proc/${pid}/status`]).toString()), 10_000);
      expect(execFileSync("cat", [`/proc/${pid}/status`]).toString()).toMatch(/^Threads:\s+2$/m);
      expect(groupHasLiveMembers(pid)).toBe(true);
    } finally {
      process.kill(-pid, "SIGKILL");
    }
    await pollFor("the group to be empty once it is killed and reaped", () => !groupHasLiveMembers(pid), 10_000);
  });

  it("reports an empty group as empty, and a group of a sleeping process as alive", async () => {
    const child = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
    const pid = child.pid as number;
    await new Promise((resolve) => child.once("spawn", resolve));
    expect(groupHasLiveMembers(pid)).toBe(true);
    process.kill(-pid, "SIGKILL");
    await pollFor("the group to be empty", () => !groupHasLiveMembers(pid), 10_000);
  });
});
