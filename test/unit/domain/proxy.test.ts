import { describe, expect, it } from "vitest";
import type { ServerConfig } from "../../../src/config/types.js";
import { TIMING } from "../../../src/domain/supervisor.js";
import type { Command } from "../../../src/domain/types.js";
import { harness, pool, runsForever } from "../../support/harness.js";

const server = (overrides: Partial<ServerConfig> = {}): ServerConfig => ({
  proxy: "envoy",
  portArgName: "--port", portValueTemplate: "{{.Port}}", startPort: 9090, signalTimeoutMs: 20_000, healthCheckPath: "/health",
  loadBalancerAlgorithm: "LEAST_REQUEST", proxyConfigPath: "./envoy", proxyAdminPort: 9901, listenerPort: 8080, proxyBinary: "envoy", ...overrides,
});
const rotations = (commands: { command: Command }[]) =>
  commands.flatMap(({ command }) => (command.type === "proxyRotation" ? [command.endpoints.map((e) => (e.inRotation ? "1" : "0")).join("")] : []));

describe("proxy mode in the core", () => {
  it("starts the proxy first, then the workers, each joining the rotation once its port accepts connections", () => {
    const h = harness([pool({ replicas: 2, server: server() })]);
    h.runUntil(200);
    expect(h.spawns.map((s) => [s.workerId, s.exec, s.args])).toEqual([
      ["web-proxy", "envoy", ["-c", "bootstrap.yaml"]],
      ["web-0", "./server", ["--port", "9090"]],
      ["web-1", "./server", ["--port", "9091"]],
    ]);
    expect(rotations(h.commands)).toEqual(["00", "00", "10", "11"]); // sent again once the proxy runs
  });

  it("takes a worker out of rotation when its lifespan ends and SIGTERMs it a moment later, then back in once its replacement runs", () => {
    const h = harness([pool({ replicas: 2, server: server(), limits: { lifespanMs: 1_000, jitterRatio: 0, memoryBytes: 0 } })]);
    h.runUntil(1_500);
    const outAt = h.commands.find(({ atMs, command }) => atMs >= 1_000 && command.type === "proxyRotation")?.atMs;
    const sigtermAt = h.commands.find(({ command }) => command.type === "signal" && command.signal === "SIGTERM")?.atMs;
    expect(outAt).toBe(1_000);
    expect(sigtermAt).toBe(1_000 + TIMING.rotationGraceMs);
    // max_unavailable 1 (the default): web-1's restart waits until web-0's replacement is back.
    expect(rotations(h.commands)).toEqual(["00", "00", "10", "11", "01", "10", "11"]);
  });

  it("with max_unavailable 2 both workers due at once leave the rotation together", () => {
    const h = harness([pool({ replicas: 2, maxUnavailable: 2, server: server(), limits: { lifespanMs: 1_000, jitterRatio: 0, memoryBytes: 0 } })]);
    h.runUntil(1_500);
    expect(rotations(h.commands)).toEqual(["00", "00", "10", "11", "01", "00", "10", "11"]);
  });

  it("on shutdown drains the proxy, stops the workers, and stops the proxy last with server.signal_timeout", () => {
    const ignores = { ...runsForever, onSigterm: { kind: "ignore" } as const };
    const h = harness([pool({ replicas: 2, signalTimeoutMs: 5_000, server: server({ signalTimeoutMs: 20_000 }) })], (request) => (request.workerId === "web-proxy" ? ignores : runsForever));
    h.runUntil(100);
    h.runtime.dispatch({ type: "shutdownRequested", signal: "SIGTERM" });
    expect(h.runToExit()).toBe(0);
    const drainAt = h.commands.find(({ command }) => command.type === "drainProxy")?.atMs;
    expect(drainAt).toBe(100);
    expect(h.signals()).toEqual([
      { atMs: 100, workerId: "web-0", signal: "SIGTERM" },
      { atMs: 100, workerId: "web-1", signal: "SIGTERM" },
      { atMs: 110, workerId: "web-proxy", signal: "SIGTERM" }, // once both workers exited (10 ms after SIGTERM)
      { atMs: 20_110, workerId: "web-proxy", signal: "SIGKILL" },
    ]);
  });

  it("restarts a crashed proxy with a growing, bounded delay, counted as a proxy restart and not against max_restarts", () => {
    const h = harness([pool({ replicas: 1, maxRestarts: 0, server: server() })], (request) => (request.workerId === "web-proxy" ? { ...runsForever, exitAfterMs: 10, exitCode: 1 } : runsForever));
    h.runUntil(60_000);
    expect(h.runtime.exited).toBeNull();
    const proxyStarts = h.commands.filter(({ command }) => command.type === "spawn" && command.ref.worker === -1).map((c) => c.atMs);
    const gaps = proxyStarts.slice(1).map((at, i) => at - proxyStarts[i]! - 10);
    expect(gaps.slice(0, 7)).toEqual([100, 200, 400, 800, 1_600, 3_200, 5_000]);
    expect(gaps.every((gap) => gap <= 5_000)).toBe(true);
    expect(h.metrics.filter((m) => m.metric === "restart" && m.workerType === "proxy").length).toBe(proxyStarts.length - 1);
    expect(h.metrics.some((m) => m.metric === "restart" && m.workerType === "worker")).toBe(false);
  });
});
