// Start-up checks of dist/monoceros that need the machine: a worker that cannot be run is a
// config error (exit 2, one line naming the field), not a restart loop on `spawn ENOENT`.
import { chmodSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cleanUpAfterEach, startMonoceros, writeConfig } from "../support/monoceros.js";

const track = cleanUpAfterEach(afterEach);

describe("start-up checks", () => {
  it("a script whose #! interpreter does not exist: exit 2, one line naming the field and the interpreter", async () => {
    const script = join(dirname(writeConfig("")), "worker.sh");
    writeFileSync(script, "#!/nonexistent/interpreter\necho never\n");
    chmodSync(script, 0o755);
    const m = track(startMonoceros(`supervisor:\n  workers:\n    - {name: w, replicas: 2, exec: ${script}, max_restarts: -1}\n`));
    const { code } = await m.exited;
    expect(code).toBe(2);
    expect(m.stderrLines).toEqual([
      `supervisor.workers[0].exec: cannot run "${script}": its interpreter "/nonexistent/interpreter" (from its #! line) cannot be run: no such file`,
    ]);
    expect(m.stdoutLines).toEqual([]);
  });

  it("a health check command that cannot be run, and notify sockets that cannot be made: exit 2, one line each", async () => {
    const longTmp = `/tmp/${"x".repeat(90)}`;
    const m = track(startMonoceros(
      "supervisor:\n  workers:\n    - {name: a, replicas: 1, exec: sleep, args: ['9'], max_restarts: 1, health_check: {exec: [/no/such/check]}}\n" +
        "    - {name: b, replicas: 1, exec: sleep, args: ['9'], max_restarts: 1, health_check: {notify: true}}\n",
      [],
      { env: { TMPDIR: longTmp } },
    ));
    expect((await m.exited).code).toBe(2);
    expect(m.stderrLines).toEqual([
      'supervisor.workers[0].health_check.exec[0]: cannot run "/no/such/check": no such file',
      `supervisor.workers[1].health_check.notify: cannot create notify sockets here: cannot create notify sockets under ${longTmp}: its path is too long for a socket address (set TMPDIR to a shorter one)`,
    ]);
  });

  it("workers do not inherit the NOTIFY_SOCKET and watchdog systemd gave Monoceros itself", async () => {
    const m = track(startMonoceros(
      "supervisor:\n  workers:\n    - {name: a, replicas: 1, exec: sh, args: ['-c', 'echo \"env=[$NOTIFY_SOCKET][$WATCHDOG_PID][$WATCHDOG_USEC]\"; sleep 60'], max_restarts: 1}\n",
      [],
      { env: { NOTIFY_SOCKET: "/run/systemd/notify", WATCHDOG_PID: "1", WATCHDOG_USEC: "30000000" } },
    ));
    const line = await m.waitFor("the worker's line", () => [...m.stdoutLines, ...m.stderrLines].find((text) => text.includes("env=[")));
    expect(line).toContain("env=[][][]");
  });

  it("#!/usr/bin/env with a command missing from PATH: the same", async () => {
    const script = join(dirname(writeConfig("")), "worker.py");
    writeFileSync(script, "#!/usr/bin/env no-such-python3\nprint('never')\n");
    chmodSync(script, 0o755);
    const m = track(startMonoceros(`supervisor:\n  workers:\n    - {name: w, replicas: 1, exec: ${script}, max_restarts: 1}\n`));
    expect((await m.exited).code).toBe(2);
    expect(m.stderrLines).toEqual([
      `supervisor.workers[0].exec: cannot run "${script}": its interpreter "no-such-python3" (from "#!/usr/bin/env no-such-python3") cannot be run: not found in PATH`,
    ]);
  });
});
