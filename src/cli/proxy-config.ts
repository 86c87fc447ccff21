// `monoceros proxy-config -c cfg.yaml -o DIR`: renders each proxy pool's Envoy configuration into
// DIR/<pool>/ without running anything, to read it or check it with `envoy --mode validate`.
import { Command, CommanderError } from "commander";
import { join, resolve } from "node:path";
import { loadConfigText } from "../config/load.js";
import { envoyFiles, writeFolder } from "../envoy/data-plane.js";
import type { CliIo } from "./main.js";
import { EXIT_CODES } from "./exit-codes.js";
import { readConfigFile } from "./read-config-file.js";

export async function proxyConfigCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const program = new Command()
    .name("monoceros proxy-config")
    .description("Write the proxy configuration of every proxy-mode pool into <dir>/<pool>/, and run nothing.")
    .requiredOption("-c, --config <file>", "path to the config file (YAML)")
    .requiredOption("-o, --output <dir>", "folder to write into (created if missing)")
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout(text.trimEnd()),
      writeErr: (text) => io.stderr(text.trimEnd()),
      outputError: (text, write) => write(`${text.trim().replace(/^error: /, "monoceros proxy-config: ")} (see monoceros proxy-config --help)`),
    });
  try {
    program.parse([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.code === "commander.helpDisplayed" ? EXIT_CODES.ok : EXIT_CODES.usage;
    throw error;
  }
  const options = program.opts<{ config: string; output: string }>();
  const file = readConfigFile(options.config);
  if (!file.ok) {
    io.stderr(`monoceros: ${file.error}`);
    return EXIT_CODES.usage;
  }
  const loaded = loadConfigText(file.text);
  if (!loaded.ok) {
    for (const line of loaded.errors) io.stderr(line);
    return EXIT_CODES.usage;
  }
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
