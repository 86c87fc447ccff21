// What every command does first: read the config file and validate it, printing every problem.
import { Command, CommanderError } from "commander";
import { loadConfigText } from "../config/load.js";
import type { Config } from "../config/types.js";
import { EXIT_CODES } from "./exit-codes.js";
import { readConfigFile } from "./read-config-file.js";

export interface Printer {
  stderr: (line: string) => void;
}

/** The config, or null once its problems were printed (the caller exits with EXIT_CODES.usage). */
export function loadConfigFile(path: string, io: Printer): { config: Config; warnings: string[] } | null {
  const file = readConfigFile(path);
  if (!file.ok) {
    io.stderr(`monoceros: ${file.error}`);
    return null;
  }
  const loaded = loadConfigText(file.text);
  if (!loaded.ok) {
    for (const line of loaded.errors) io.stderr(line);
    return null;
  }
  return { config: loaded.config, warnings: loaded.warnings };
}

/**
 * A command as every Monoceros command behaves: no extra arguments, no process.exit from commander,
 * output through `io`, and errors as one line naming the command and where help is.
 */
export function command(name: string, io: Printer & { stdout: (line: string) => void }): Command {
  return new Command()
    .name(name)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout(text.trimEnd()),
      writeErr: (text) => io.stderr(text.trimEnd()),
      outputError: (text, write) => write(`${text.trim().replace(/^error: /, `${name}: `)} (see ${name} --help)`),
    });
}

/** Parses the command line; returns an exit code when there is nothing more to do (help, version, a bad flag). */
export function parseArguments(program: Command, argv: readonly string[]): number | null {
  try {
    program.parse([...argv], { from: "user" });
    return null;
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    const benign = error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help";
    return benign ? EXIT_CODES.ok : EXIT_CODES.usage;
  }
}
