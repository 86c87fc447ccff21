// `monoceros proxy-config -c cfg.yaml -o DIR`: renders each proxy pool's configuration, as its own
// proxy kind's data plane writes it at run time, into DIR/<pool>/ without running anything, to
// read it or check it with the proxy itself (`envoy --mode validate`, `haproxy -c`).
import { join, resolve } from "node:path";
import { initialSlots, proxyEndpoints } from "../domain/identity.js";
import { writeProxyFiles } from "../proxy/data-plane.js";
import { createDataPlanes, dataPlaneOf } from "../proxy/kinds.js";
import type { CliIo } from "./main.js";
import { command, loadConfigFile, parseArguments } from "./config-file.js";
import { EXIT_CODES } from "./exit-codes.js";

export async function proxyConfigCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const program = command("monoceros proxy-config", io)
    .description("Write the proxy configuration of every proxy-mode pool into <dir>/<pool>/, and run nothing.")
    .requiredOption("-c, --config <file>", "path to the config file (YAML)")
    .requiredOption("-o, --output <dir>", "folder to write into (created if missing)");
  const parsed = parseArguments(program, argv);
  if (parsed !== null) return parsed;
  const options = program.opts<{ config: string; output: string }>();
  const loaded = loadConfigFile(options.config, io);
  if (loaded === null) return EXIT_CODES.usage;
  const pools = loaded.config.pools.filter((pool) => pool.server !== null);
  if (pools.length === 0) {
    io.stderr(`monoceros proxy-config: no pool in ${options.config} has a server section (proxy mode)`);
    return EXIT_CODES.usage;
  }
  // Nothing runs, so nothing is reported.
  const dataPlanes = createDataPlanes(() => undefined);
  for (const pool of pools) {
    const folder = join(resolve(options.output), pool.name);
    // Every worker in rotation: the steady state, as the running proxy would have it (the max_surge slots free).
    const rendering = dataPlaneOf(dataPlanes, pool).render(pool, folder, proxyEndpoints(pool, initialSlots(pool), (worker) => worker < pool.replicas));
    try {
      writeProxyFiles(folder, rendering.files);
    } catch (error) {
      io.stderr(`monoceros proxy-config: cannot write ${folder}: ${error instanceof Error ? error.message : String(error)}`);
      return EXIT_CODES.usage;
    }
    const names = rendering.files.map((file) => file.name).join(", ");
    io.stdout(`wrote ${folder}/ (${names}): check with ${[pool.server?.proxyBinary ?? "", ...rendering.checkArgs].join(" ")}`);
  }
  return EXIT_CODES.ok;
}
