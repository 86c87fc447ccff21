// `monoceros proxy-config` from the built binary, with each pool's files checked by the proxy
// that would run them: HAProxy's own `haproxy -c` (skipped with the reason where HAProxy is not
// installed), and Envoy's files against Envoy's API schema (no Envoy binary can be installed here).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { findExecutable } from "../../src/backends/os/executable.js";
import { checkEnvoyObject } from "../support/envoy-schema.js";
import { MONOCEROS, ROOT } from "../support/monoceros.js";

const haproxy = findExecutable("haproxy");
if (!haproxy.ok) console.log("SKIPPED haproxy -c of proxy-config's output: haproxy is not installed (make test installs it as root)");

function proxyConfig(example: string): string {
  const output = mkdtempSync(join(tmpdir(), "monoceros-proxy-config-it-"));
  execFileSync(process.execPath, [MONOCEROS, "proxy-config", "-c", join(ROOT, example), "-o", output], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
  return join(output, "web");
}

describe("monoceros proxy-config (built binary)", () => {
  it.skipIf(!haproxy.ok)("writes a haproxy.cfg for examples/haproxy.yaml that haproxy -c accepts", () => {
    const folder = proxyConfig("examples/haproxy.yaml");
    expect(readdirSync(folder)).toEqual(["haproxy.cfg"]);
    const check = spawnSync(haproxy.ok ? haproxy.path : "haproxy", ["-c", "-f", join(folder, "haproxy.cfg")], { encoding: "utf8", timeout: 30_000 });
    expect({ status: check.status, output: `${check.stdout}${check.stderr}` }).toMatchObject({ status: 0, output: expect.stringContaining("Configuration file is valid") });
  });

  it("writes Envoy's files for examples/proxy.yaml under the original's names, valid against Envoy's API schema", () => {
    const folder = proxyConfig("examples/proxy.yaml");
    expect(readdirSync(folder).sort()).toEqual(["clusters.yaml", "endpoints.yaml", "envoy_starting_config.yaml", "listeners.yaml"]);
    const yamlOf = (name: string) => parse(readFileSync(join(folder, name), "utf8")) as object;
    expect(checkEnvoyObject("envoy.config.bootstrap.v3.Bootstrap", yamlOf("envoy_starting_config.yaml"))).toEqual([]);
    for (const name of ["clusters.yaml", "listeners.yaml", "endpoints.yaml"]) {
      expect(checkEnvoyObject("envoy.service.discovery.v3.DiscoveryResponse", yamlOf(name))).toEqual([]);
    }
  });
});
