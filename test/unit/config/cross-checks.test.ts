import { describe, expect, it } from "vitest";
import { crossCheck } from "../../../src/config/cross-checks.js";
import { loadConfigText } from "../../../src/config/load.js";

/** A proxy pool with its own ports, so that only folders can clash. */
function pool(name: string, index: number, server: Record<string, unknown> = {}): Record<string, unknown> {
  const start = 9000 + index * 100;
  return {
    name, replicas: 2, exec: "./s", max_restarts: 1,
    server: { port_arg: { name: "-p", value_template: "{{.Port}}", start_port: start }, health_check_path: "/h", listener_port: start + 50, ...server },
  };
}

const folderProblems = (servers: Record<string, unknown>[], cwd = "/srv/app") =>
  crossCheck({ supervisor: { workers: servers.map((server, i) => pool(String.fromCharCode(97 + i), i, server)) } }, cwd)
    .filter((p) => p.path.at(-1) === "proxy_config_path")
    .map((p) => `${p.path.join(".")}: ${p.message}`);

describe("proxy folders that would clash", () => {
  it("rejects two Envoy pools that both leave proxy_config_path unset (both get ./envoy), naming both pools", () => {
    expect(folderProblems([{}, {}])).toEqual([
      `supervisor.workers.1.server.proxy_config_path: folder "envoy" is also used by supervisor.workers[0] (pool "a"): pools "a" and "b" would overwrite each other's proxy files; give each its own proxy_config_path (proxy_config_path is unset in both, so it is the envoy default ./envoy)`,
    ]);
  });

  it("rejects two HAProxy pools that both leave it unset (both get ./haproxy)", () => {
    expect(folderProblems([{ proxy: "haproxy" }, { proxy: "haproxy" }])).toEqual([
      expect.stringContaining(`folder "haproxy" is also used by supervisor.workers[0] (pool "a"): pools "a" and "b" would`),
    ]);
  });

  it("lets an Envoy pool and a HAProxy pool both use their defaults (./envoy and ./haproxy)", () => {
    expect(folderProblems([{}, { proxy: "haproxy" }])).toEqual([]);
    expect(folderProblems([{ proxy: "envoy" }, { proxy: "haproxy", proxy_config_path: null }])).toEqual([]);
  });

  it("rejects a pool whose folder is another kind's default", () => {
    expect(folderProblems([{}, { proxy: "haproxy", proxy_config_path: "./envoy" }])).toEqual([
      `supervisor.workers.1.server.proxy_config_path: folder "envoy" is also used by supervisor.workers[0] (pool "a"): pools "a" and "b" would overwrite each other's proxy files; give each its own proxy_config_path (proxy_config_path is unset in pool "a", so it is the envoy default ./envoy)`,
    ]);
    expect(folderProblems([{ proxy_config_path: "haproxy/" }, { proxy: "haproxy" }])).toEqual([
      expect.stringMatching(/^supervisor\.workers\.1\.server\.proxy_config_path: folder "haproxy" is also used by supervisor\.workers\[0\] \(pool "a"\).*\(proxy_config_path is unset in pool "b", so it is the haproxy default \.\/haproxy\)$/),
    ]);
  });

  it("rejects one folder however it is spelt: ./x, x/, x//, y/../x, and the absolute path from the working folder", () => {
    for (const other of ["./shared", "shared/", "shared//", "other/../shared", "/srv/app/shared"]) {
      expect(folderProblems([{ proxy_config_path: "shared" }, { proxy_config_path: other }])).toHaveLength(1);
    }
    expect(folderProblems([{ proxy_config_path: "shared" }, { proxy_config_path: "/srv/app/shared" }])[0]).toContain(`folder "/srv/app/shared" is also used by supervisor.workers[0] (pool "a", as "shared")`);
    expect(folderProblems([{ proxy_config_path: "shared" }, { proxy_config_path: "/srv/app/shared" }], "/elsewhere")).toEqual([]);
  });

  it("rejects the same folder for an Envoy and a HAProxy pool, although their file names differ", () => {
    expect(folderProblems([{ proxy_config_path: "/run/proxy" }, { proxy: "haproxy", proxy_config_path: "/run/proxy" }])).toHaveLength(1);
  });

  it("names the first user of the folder for every later one", () => {
    expect(folderProblems([{}, {}, {}]).map((line) => /^supervisor\.workers\.(\d)\..*workers\[(\d)\]/.exec(line)?.slice(1))).toEqual([
      ["1", "0"],
      ["2", "0"],
    ]);
  });

  it("allows distinct and nested folders (each proxy writes fixed names into its own folder only)", () => {
    expect(folderProblems([{ proxy_config_path: "/run/a" }, { proxy_config_path: "/run/b" }])).toEqual([]);
    expect(folderProblems([{ proxy_config_path: "/run/a" }, { proxy_config_path: "/run/a/b" }])).toEqual([]);
  });

  it("adds no folder error where field validation already rejects what decides the folder", () => {
    expect(folderProblems([{}, { proxy: "nginx" }])).toEqual([]);
    expect(folderProblems([{ proxy_config_path: "" }, { proxy_config_path: "" }])).toEqual([]);
    expect(folderProblems([{ proxy_config_path: 5 }, { proxy_config_path: 5 }])).toEqual([]);
  });

  it("reports it from the config file with the line, as every other problem", () => {
    const text = `supervisor:
  workers:
    - {name: api, replicas: 1, exec: ./s, max_restarts: 1, server: {port_arg: {name: -p, value_template: '{{.Port}}', start_port: 9000}, health_check_path: /h, listener_port: 8001}}
    - {name: web, replicas: 1, exec: ./s, max_restarts: 1, server: {port_arg: {name: -p, value_template: '{{.Port}}', start_port: 9100}, health_check_path: /h, listener_port: 8002}}
`;
    const loaded = loadConfigText(text);
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.errors).toEqual([expect.stringMatching(/^supervisor\.workers\[1\]\.server\.proxy_config_path: folder "envoy" is also used by supervisor\.workers\[0\] \(pool "api"\): pools "api" and "web" would .* \(line 4\)$/)]);
  });
});
