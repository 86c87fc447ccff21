// The admin endpoint survives what goes wrong while it runs: a failed accept (EMFILE) or a
// request whose answer throws must not end Monoceros, nor stop the endpoint.
import type { Server } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { AdminServer } from "../../../src/admin/server.js";
import { loadConfigText } from "../../../src/config/load.js";
import { createSupervisorState } from "../../../src/domain/state.js";
import type { Metrics } from "../../../src/metrics/registry.js";

const servers: AdminServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

function config() {
  const loaded = loadConfigText("supervisor:\n  workers:\n    - {name: web, replicas: 2, exec: /bin/true, max_restarts: 1}\n");
  if (!loaded.ok) throw new Error(loaded.errors.join("\n"));
  return loaded.config;
}

const metrics = { text: () => Promise.resolve("# metrics\n"), contentType: "text/plain" } as unknown as Metrics;

async function start(nowMs: () => number) {
  const problems: [code: string, message: string][] = [];
  const admin = new AdminServer(metrics, { state: createSupervisorState(config(), 1), stats: () => null, toEpochMs: (ms) => ms, nowMs }, (code, message) => problems.push([code, message]));
  servers.push(admin);
  const port = await admin.listen({ port: 0, host: "127.0.0.1" });
  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: response.status, text: await response.text() };
  };
  return { admin, problems, get };
}

const emfile = () => Object.assign(new Error("EMFILE: too many open files"), { code: "EMFILE" });

describe("admin endpoint under errors", () => {
  it("keeps running after a failed accept, and reports it", async () => {
    const { admin, problems, get } = await start(() => 0);
    // What Node emits on the server when accept() fails (libuv hands EMFILE, ENFILE, ENOMEM up).
    const server = (admin as unknown as { server: Server }).server;
    server.emit("error", Object.assign(emfile(), { syscall: "accept" }));
    expect(problems).toEqual([["EMFILE", "admin endpoint: cannot accept a connection: EMFILE: too many open files"]]);
    expect(await get("/health")).toEqual({ status: 200, text: "ok\n" });
  });

  it("answers 500 to a request whose answer throws, reports it, and answers the next one", async () => {
    let failing = true;
    const { problems, get } = await start(() => {
      if (failing) throw emfile();
      return 0;
    });
    expect(await get("/status")).toEqual({ status: 500, text: "internal error\n" });
    expect(problems).toEqual([["EMFILE", "admin endpoint: cannot answer /status: EMFILE: too many open files"]]);
    failing = false;
    expect((await get("/status")).status).toBe(200);
  });
});
