// `monoceros proxy-config -c cfg.yaml -o DIR`: renders each proxy pool's Envoy configuration into
// DIR/<pool>/ without running anything, to read it or check it with `envoy --mode validate`.
import { join, resolve } from "node:path";
import { envoyFiles, writeFolder } from "../envoy/data-plane.js";
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
  for (const pool of pools) {
    const folder = join(resolve(options.output), pool.name);
    const endpoints = Array.from({ length: pool.replicas }, (_, i) => ({ port: (pool.server?.startPort ?? 0) + i, inRotation: true }));
    try {
      writeFolder(folder, envoyFiles(pool, folder, endpoints));
    } catch (error) {
      io.stderr(`monoceros proxy-config: cannot write ${folder}: ${error instanceof Error ? error.message : String(error)}`);
      return EXIT_CODES.usage;
    }
    io.stdout(`wrote ${folder}/ (bootstrap.yaml, clusters.yaml, listeners.yaml, endpoints.yaml): check with envoy --mode validate -c ${join(folder, "bootstrap.yaml")}`);
  }
  return EXIT_CODES.ok;
}
