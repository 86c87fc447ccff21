import { describe, expect, it } from "vitest";
import { crossCheck, formatPath } from "../../../src/config/cross-checks.js";
import { loadConfigText } from "../../../src/config/load.js";
import type { PoolConfig, ServerConfig } from "../../../src/config/types.js";
import { HAPROXY_SOCKET_PATH_BYTES_MAX, haproxyConfigProblems, haproxySocketPath, haproxySocketPathProblem } from "../../../src/haproxy/socket-path.js";
import { pool, server } from "../../support/harness.js";

/** An absolute folder whose haproxy.sock path is exactly `bytes` long ("/haproxy.sock" is 13). */
const folderForSocketOf = (bytes: number) => `/srv/${"a".repeat(bytes - 13 - 5)}`;

function haproxyPool(overrides: Partial<ServerConfig>): PoolConfig {
  return pool({
    replicas: 1, exec: "./s", maxRestarts: 1,
    server: server({ proxy: "haproxy", portArgName: "-p", startPort: 9000, healthCheckPath: "/h", proxyConfigPath: "./haproxy", listenerPort: 8000, proxyBinary: "haproxy", ...overrides }),
  });
}

/** The raw tree as the config file gives it, with one proxy pool. */
function raw(server: Record<string, unknown>): Record<string, unknown> {
  return {
    supervisor: {
      workers: [{ name: "web", replicas: 1, exec: "./s", max_restarts: 1, server: { port_arg: { name: "-p", value_template: "{{.Port}}", start_port: 9000 }, health_check_path: "/h", listener_port: 8000, ...server } }],
    },
  };
}

const socketProblems = (server: Record<string, unknown>, cwd: string) =>
  crossCheck(raw(server), cwd)
    .filter((p) => p.path.at(-1) === "proxy_config_path")
    .map((p) => `${formatPath(p.path)}: ${p.message}`);

describe("HAProxy's runtime API socket path", () => {
  it("is haproxy.sock in proxy_config_path, resolved from the working folder", () => {
    expect(haproxySocketPath("./haproxy/", "/srv/app")).toBe("/srv/app/haproxy/haproxy.sock");
    expect(haproxySocketPath("/run/web", "/srv/app")).toBe("/run/web/haproxy.sock");
  });

  it("accepts a socket path of HAProxy 2.6's 97 bytes, and rejects 98 with the path, its length, the limit and the longest folder", () => {
    expect(HAPROXY_SOCKET_PATH_BYTES_MAX).toBe(97);
    expect(haproxySocketPath(folderForSocketOf(97), "/")).toHaveLength(97);
    expect(haproxySocketPathProblem(folderForSocketOf(97), "/")).toBeNull();
    const socket = haproxySocketPath(folderForSocketOf(98), "/");
    expect(haproxySocketPathProblem(folderForSocketOf(98), "/")).toBe(
      `HAProxy's runtime API socket would be ${socket} (98 bytes), over HAProxy's limit of 97 bytes for a unix socket path, so HAProxy could not start; use a folder whose absolute path is at most 84 bytes`,
    );
  });

  it("counts bytes, not characters", () => {
    const folder = `/srv/${"é".repeat(40)}`; // 85 bytes in 45 characters
    expect(haproxySocketPathProblem(folder, "/")).toContain("(98 bytes)");
  });

  it("names supervisor.workers[i].server.proxy_config_path for a loaded config's HAProxy pool, and nothing for Envoy or a short folder", () => {
    expect(haproxyConfigProblems(haproxyPool({ proxyConfigPath: folderForSocketOf(98) }), 2, "/")).toEqual([
      expect.stringMatching(/^supervisor\.workers\[2\]\.server\.proxy_config_path: HAProxy's runtime API socket would be \/srv\/a+\/haproxy\.sock \(98 bytes\), over HAProxy's limit of 97 bytes/),
    ]);
    expect(haproxyConfigProblems(haproxyPool({ proxyConfigPath: "./haproxy" }), 0, "/srv/app")).toEqual([]);
    expect(haproxyConfigProblems(haproxyPool({ proxy: "envoy", proxyConfigPath: folderForSocketOf(98) }), 0, "/")).toEqual([]);
  });
});

describe("the config check (-k and every start): a HAProxy folder too long for its socket", () => {
  it("rejects a long proxy_config_path, and a relative one that is long from the working folder", () => {
    expect(socketProblems({ proxy: "haproxy", proxy_config_path: folderForSocketOf(98) }, "/srv/app")).toEqual([
      expect.stringMatching(/^supervisor\.workers\[0\]\.server\.proxy_config_path: HAProxy's runtime API socket would be .* \(98 bytes\), over HAProxy's limit of 97 bytes for a unix socket path, so HAProxy could not start; use a folder whose absolute path is at most 84 bytes$/),
    ]);
    const cwd = `/${"w".repeat(80)}`;
    expect(socketProblems({ proxy: "haproxy", proxy_config_path: "run/h" }, cwd)).toEqual([expect.stringContaining(`${cwd}/run/h/haproxy.sock (100 bytes)`)]);
    expect(socketProblems({ proxy: "haproxy", proxy_config_path: "run/h" }, "/srv/app")).toEqual([]);
  });

  it("says when the folder is the HAProxy default because proxy_config_path is unset", () => {
    const cwd = `/${"w".repeat(80)}`;
    expect(socketProblems({ proxy: "haproxy" }, cwd)).toEqual([
      expect.stringMatching(/\(102 bytes\).* \(proxy_config_path is unset, so it is the haproxy default \.\/haproxy\)$/),
    ]);
  });

  it("leaves Envoy pools alone (Envoy has no unix socket there) and fields that field validation rejects", () => {
    expect(socketProblems({ proxy_config_path: folderForSocketOf(120) }, "/")).toEqual([]);
    expect(socketProblems({ proxy: "envoy", proxy_config_path: folderForSocketOf(120) }, "/")).toEqual([]);
    expect(socketProblems({ proxy: "nginx", proxy_config_path: folderForSocketOf(120) }, "/")).toEqual([]);
    expect(socketProblems({ proxy: "haproxy", proxy_config_path: 5 }, "/")).toEqual([]);
  });

  it("fails loading the config file with the line, as every other problem", () => {
    const text = `supervisor:
  workers:
    - name: web
      replicas: 1
      exec: ./s
      max_restarts: 1
      server:
        proxy: haproxy
        port_arg: {name: -p, value_template: '{{.Port}}', start_port: 9000}
        health_check_path: /h
        proxy_config_path: ${folderForSocketOf(110)}
`;
    const loaded = loadConfigText(text);
    expect(loaded).toEqual({
      ok: false,
      errors: [expect.stringMatching(/^supervisor\.workers\[0\]\.server\.proxy_config_path: HAProxy's runtime API socket would be .* \(110 bytes\).* \(line 11\)$/)],
    });
  });
});
