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
