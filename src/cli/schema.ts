// `monoceros schema`: prints the config's JSON Schema (draft-07), for editors that validate and
// complete YAML with one (VS Code's YAML extension, any yaml-language-server client):
// `monoceros schema > monoceros.schema.json`, then a modeline in the config file.
import { configJsonSchemaText } from "../config/json-schema.js";
import { command, parseArguments } from "./config-file.js";
import { EXIT_CODES } from "./exit-codes.js";
import type { CliIo } from "./main.js";

export function schemaCommand(argv: readonly string[], io: CliIo): number {
  const program = command("monoceros schema", io)
    .description("Print the JSON Schema of the config file (draft-07) on stdout, for editors.")
    .addHelpText("after", "\nExample:\n  monoceros schema > monoceros.schema.json\nand, as the config file's first line:\n  # yaml-language-server: $schema=monoceros.schema.json");
  const parsed = parseArguments(program, argv);
  if (parsed !== null) return parsed;
  // io.stdout ends the line itself: the output is byte for byte the file the repository ships.
  io.stdout(configJsonSchemaText().replace(/\n$/, ""));
  return EXIT_CODES.ok;
}
