import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { checkEnvoyObject } from "../../support/envoy-schema.js";

async function proxyConfig(config: string) {
  const output = mkdtempSync(join(tmpdir(), "monoceros-proxy-config-"));
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(["proxy-config", "-c", config, "-o", output], { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) });
  return { code, stdout, stderr, output };
}

const yamlOf = (path: string) => parse(readFileSync(path, "utf8")) as Record<string, unknown>;
const ENVOY_FILE_NAMES = ["clusters.yaml", "endpoints.yaml", "envoy_starting_config.yaml", "listeners.yaml"];

describe("monoceros proxy-config", () => {
  it("writes an Envoy pool's files under the original's names, schema-valid, pointing at each other", async () => {
    const { code, stdout, stderr, output } = await proxyConfig("examples/proxy.yaml");
    expect({ code, stderr }).toEqual({ code: 0, stderr: [] });
    const folder = join(output, "web");
    expect(readdirSync(folder).sort()).toEqual(ENVOY_FILE_NAMES);
    const bootstrap = yamlOf(join(folder, "envoy_starting_config.yaml"));
    expect(checkEnvoyObject("envoy.config.bootstrap.v3.Bootstrap", bootstrap)).toEqual([]);
    for (const file of ["clusters.yaml", "listeners.yaml", "endpoints.yaml"]) {
      expect(checkEnvoyObject("envoy.service.discovery.v3.DiscoveryResponse", yamlOf(join(folder, file)))).toEqual([]);
    }
    expect(bootstrap).toMatchObject({
      dynamic_resources: {
        cds_config: { path_config_source: { path: join(folder, "clusters.yaml") } },
        lds_config: { path_config_source: { path: join(folder, "listeners.yaml") } },
      },
    });
    // Every worker in rotation, as the running proxy would have it.
    const endpoints = readFileSync(join(folder, "endpoints.yaml"), "utf8");
    expect(endpoints.match(/health_status: HEALTHY/g)).toHaveLength(3);
    expect(stdout).toEqual([`wrote ${folder}/ (endpoints.yaml, clusters.yaml, listeners.yaml, envoy_starting_config.yaml): check with envoy --mode validate -c ${join(folder, "envoy_starting_config.yaml")}`]);
  });

  it("writes a HAProxy pool's haproxy.cfg and no Envoy file", async () => {
    const { code, stdout, stderr, output } = await proxyConfig("examples/haproxy.yaml");
    expect({ code, stderr }).toEqual({ code: 0, stderr: [] });
    const folder = join(output, "web");
    expect(readdirSync(folder)).toEqual(["haproxy.cfg"]);
    const cfg = readFileSync(join(folder, "haproxy.cfg"), "utf8");
    expect(cfg).toContain(`stats socket ${join(folder, "haproxy.sock")} mode 600 level admin`);
    expect(cfg).toContain("  balance leastconn\n");
    expect(cfg).toContain("  server web-0 127.0.0.1:9090 check\n  server web-1 127.0.0.1:9091 check\n  server web-2 127.0.0.1:9092 check\n");
    expect(stdout).toEqual([`wrote ${folder}/ (haproxy.cfg): check with haproxy -c -f ${join(folder, "haproxy.cfg")}`]);
  });

  it("gives each pool of a mixed config its own kind's files", async () => {
    const config = join(mkdtempSync(join(tmpdir(), "monoceros-proxy-config-")), "mixed.yaml");
    const pool = (name: string, start: number, proxy: string) =>
      `    - {name: ${name}, replicas: 2, exec: ./s, max_restarts: 1, server: {proxy: ${proxy}, port_arg: {name: -p, value_template: '{{.Port}}', start_port: ${start}}, health_check_path: /h, listener_port: ${start + 50}}}\n`;
    writeFileSync(config, `supervisor:\n  workers:\n${pool("api", 9100, "envoy")}${pool("web", 9200, "haproxy")}`);
    const { code, output } = await proxyConfig(config);
    expect(code).toBe(0);
    expect(readdirSync(join(output, "api")).sort()).toEqual(ENVOY_FILE_NAMES);
    expect(readdirSync(join(output, "web"))).toEqual(["haproxy.cfg"]);
  });
});
