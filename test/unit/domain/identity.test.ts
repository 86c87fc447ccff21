// Worker i's args: the port flag first (as the original), {{.Port}} and {{.WorkerId}} filled in.
import { describe, expect, it } from "vitest";
import { workerArgs } from "../../../src/domain/identity.js";
import { pool, server } from "../../support/harness.js";

describe("worker args", () => {
  it("puts the port flag first and fills {{.Port}} and {{.WorkerId}} in the args; other {{…}} text stays as written", () => {
    const proxied = pool({ args: ["--id={{.WorkerId}}", "--also={{ .Port }}", "--format={{.Status}}"], server: server({ startPort: 9090 }) });
    expect(workerArgs(proxied, 2)).toEqual(["--port", "9092", "--id=web-2", "--also=9092", "--format={{.Status}}"]);
  });

  it("with an empty port flag, the port goes only where args say (python3 -m http.server {{.Port}})", () => {
    const positional = pool({ args: ["-m", "http.server", "{{.Port}}"], server: server({ portArgName: "", startPort: 8000 }) });
    expect(workerArgs(positional, 1)).toEqual(["-m", "http.server", "8001"]);
  });

  it("in supervisor mode fills {{.WorkerId}} and leaves the args otherwise as written", () => {
    expect(workerArgs(pool({ args: ["--log=/var/log/{{.WorkerId}}.log", "plain"] }), 0)).toEqual(["--log=/var/log/web-0.log", "plain"]);
  });
});
