// The limit on HAProxy's runtime API socket path, against the real HAProxy (Debian's 2.6) and the
// built binary: Monoceros's check agrees with `haproxy -c` at the boundary, and a config whose
// proxy_config_path is too long is one error line at -k and at start, before anything starts.
// Skipped with the reason printed where HAProxy is not installed, as test/integration/haproxy.test.ts.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findExecutable } from "../../src/backends/os/executable.js";
import type { PoolConfig } from "../../src/config/types.js";
import { proxyEndpoints } from "../../src/domain/identity.js";
import { renderHaproxyConfig } from "../../src/haproxy/render.js";
import { HAPROXY_SOCKET_PATH_BYTES_MAX, haproxySocketPath, haproxySocketPathProblem } from "../../src/haproxy/socket-path.js";
import { MONOCEROS, PROCESSBIN, ROOT, writeConfig } from "../support/monoceros.js";

const haproxy = findExecutable("haproxy");
if (!haproxy.ok) console.log("SKIPPED the socket path limit against haproxy -c: haproxy is not installed (make test installs it as root: apt-get install -y haproxy)");

const made: string[] = [];
afterAll(() => {
  for (const folder of made) rmSync(folder, { recursive: true, force: true });
});

/** A fresh absolute folder whose haproxy.sock path is exactly `bytes` long. */
function folderForSocketOf(bytes: number): string {
  const base = mkdtempSync(join(tmpdir(), "mhx-"));
  made.push(base);
  const folder = join(base, "a".repeat(bytes - base.length - "/haproxy.sock".length - 1));
  mkdirSync(folder);
  expect(haproxySocketPath(folder, "/")).toHaveLength(bytes);
  return folder;
}

function pool(folder: string): PoolConfig {
  return {
    name: "web", replicas: 2, exec: PROCESSBIN, args: [], signalTimeoutMs: 10_000, maxRestarts: 1, startupWaitMs: 0, desiredHealthyPercentage: 0,
    limits: { lifespanMs: 0, jitterRatio: 0, memoryBytes: 0 },
    restartPolicy: { minUptimeMs: 0, backoffInitialMs: 0, backoffMaxMs: 0, windowMs: null },
    healthCheck: null,
    maxUnavailable: 1, maxSurge: 0, readyTimeoutMs: 60_000, listen: [], reusePort: true, env: {}, cwd: null, user: null, group: null,
    server: {
      proxy: "haproxy", portArgName: "--port", portValueTemplate: "{{.Port}}", startPort: 29_000, signalTimeoutMs: 10_000, healthCheckPath: "/health",
      loadBalancerAlgorithm: "ROUND_ROBIN", proxyConfigPath: folder, proxyAdminPort: 0, listenerPort: 29_050, proxyBinary: "haproxy",
    },
  };
}

function haproxyCheck(folder: string): { status: number | null; output: string } {
  const file = join(folder, "haproxy.cfg");
  writeFileSync(file, renderHaproxyConfig(pool(folder), folder, proxyEndpoints(pool(folder), 2, () => true)));
  const check = spawnSync(haproxy.ok ? haproxy.path : "haproxy", ["-c", "-f", file], { encoding: "utf8", timeout: 30_000 });
  return { status: check.status, output: `${check.stdout}${check.stderr}` };
}

const configWith = (folder: string) => `admin: {port: 0, host: 127.0.0.1}
supervisor:
  workers:
    - name: web
      replicas: 1
      max_restarts: 1
      exec: ${PROCESSBIN}
      server:
        proxy: haproxy
        port_arg: {name: --port, value_template: '{{.Port}}', start_port: 29000}
        health_check_path: /health
        listener_port: 29050
        proxy_config_path: ${folder}
`;

describe("HAProxy's runtime API socket path limit", () => {
  it.skipIf(!haproxy.ok)(`agrees with haproxy -c: a socket path of ${HAPROXY_SOCKET_PATH_BYTES_MAX} bytes starts, one byte more does not`, () => {
    const fits = folderForSocketOf(HAPROXY_SOCKET_PATH_BYTES_MAX);
    expect(haproxySocketPathProblem(fits, "/")).toBeNull();
    expect(haproxyCheck(fits)).toMatchObject({ status: 0, output: expect.stringContaining("Configuration file is valid") });

    const over = folderForSocketOf(HAPROXY_SOCKET_PATH_BYTES_MAX + 1);
    expect(haproxySocketPathProblem(over, "/")).not.toBeNull();
    const refused = haproxyCheck(over);
    expect(refused.status).not.toBe(0);
    expect(refused.output).toContain(`socket path '${join(over, "haproxy.sock")}' too long (max ${HAPROXY_SOCKET_PATH_BYTES_MAX})`);
  });

  it("is one error line naming proxy_config_path at -k and at start (exit 2), and nothing is written or started", () => {
    const folder = join(folderForSocketOf(HAPROXY_SOCKET_PATH_BYTES_MAX + 1), "web");
    const config = writeConfig(configWith(folder));
    for (const args of [["-k", "-c", config], ["-c", config]]) {
      const run = spawnSync(process.execPath, [MONOCEROS, ...args], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
      expect({ status: run.status, stdout: run.stdout, stderr: run.stderr.trim().split("\n") }).toEqual({
        status: 2,
        stdout: "",
        stderr: [
          expect.stringMatching(
            new RegExp(`^supervisor\\.workers\\[0\\]\\.server\\.proxy_config_path: HAProxy's runtime API socket would be ${folder}/haproxy\\.sock \\(${folder.length + 13} bytes\\), over HAProxy's limit of 97 bytes for a unix socket path, so HAProxy could not start; use a folder whose absolute path is at most 84 bytes \\(line 13\\)$`),
          ),
        ],
      });
    }
    expect(existsSync(folder)).toBe(false);
  });
});
