// `monoceros -c cfg.yaml [-d] [-k]`: the command line of the Go original.
import type { Command } from "commander";
import { BUILD_INFO } from "../version.js";
import { command, loadConfigFile, parseArguments } from "./config-file.js";
import { describePool } from "./describe-pool.js";
import { EXIT_CODES } from "./exit-codes.js";
import { proxyConfigCommand } from "./proxy-config.js";
import { runCtl } from "./ctl.js";
import { schemaCommand } from "./schema.js";
import { runSupervisor } from "./run.js";

export interface CliIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

interface CliOptions {
  config: string;
  debug?: boolean;
  validate?: boolean;
}

export function versionText(): string {
  return `monoceros ${BUILD_INFO.version} (revision ${BUILD_INFO.revision}, branch ${BUILD_INFO.branch}, node ${process.version})`;
}

function buildProgram(io: CliIo): Command {
  return command("monoceros", io)
    .description("A multi-process application controller: runs, keeps alive and terminates many copies of one server.")
    .requiredOption("-c, --config <file>", "path to the config file (YAML)")
    .option("-d, --debug", "human-readable, verbose logs (not for production)")
    .option("-k, --validate", "only validate the config: exit 0 if it is valid, 2 with every problem listed if not")
    .version(versionText(), "-v, --version", "print the version and exit")
    .helpOption("-h, --help", "show this help")
    .addHelpText("after", "\nAlso: monoceros proxy-config -c <file> -o <dir>   write the proxy configuration and run nothing\n      monoceros ctl [--socket PATH] status|restart|scale|logs   control a running Monoceros (monoceros ctl --help)\n      monoceros schema   print the config's JSON Schema, for editors");
}

/** Runs the CLI and resolves to the process exit code; never throws for expected failures. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv[0] === "proxy-config") return proxyConfigCommand(argv.slice(1), io);
  if (argv[0] === "ctl") return runCtl(argv.slice(1), io);
  if (argv[0] === "schema") return schemaCommand(argv.slice(1), io);
  const program = buildProgram(io);
  const parsed = parseArguments(program, argv);
  if (parsed !== null) return parsed;
  const options = program.opts<CliOptions>();
  const loaded = loadConfigFile(options.config, io);
  if (loaded === null) return EXIT_CODES.usage;
  const { config, warnings } = loaded;

  if (options.validate) {
    for (const line of warnings) io.stderr(`warning: ${line}`);
    const workers = config.pools.reduce((sum, pool) => sum + pool.replicas, 0);
    const pools = config.pools.length;
    io.stdout(`config is valid: ${options.config} (${pools} pool${pools === 1 ? "" : "s"}, ${workers} worker${workers === 1 ? "" : "s"})`);
    for (const pool of config.pools) io.stdout(`  ${describePool(pool)}`);
    return EXIT_CODES.ok;
  }

  return runSupervisor(config, { configPath: options.config, debug: options.debug ?? false, warnings, stderr: io.stderr });
}
