// The config's JSON Schema under a real validator (ajv, draft-07, strict), and YAML read as an
// editor reads it, for the tests that hold the schema against the loader.
import { Ajv, type ValidateFunction } from "ajv";
import { parseDocument } from "yaml";
import { configJsonSchema } from "../../src/config/json-schema.js";
import type { JsonSchema } from "../../src/config/json-schema-values.js";

/** Keywords of editors (yaml-language-server, VS Code) that validators ignore. */
const EDITOR_KEYWORDS = ["patternErrorMessage", "errorMessage"];

/**
 * Strict, but for two lints of ajv's that are not errors of draft-07: a type list (zod writes
 * ["string", "null"]) and an open tuple (a debug command's first entry, the executable, is checked
 * apart from the rest: items [first] plus additionalItems).
 */
export function newAjv(): Ajv {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, strictTuples: false, allErrors: true });
  for (const keyword of EDITOR_KEYWORDS) ajv.addKeyword({ keyword, schemaType: "string" });
  return ajv;
}

let whole: ValidateFunction | undefined;

/** Validates a whole config (as YAML gives it: numbers stay numbers) against the generated schema. */
export function schemaErrors(value: unknown): string[] {
  whole ??= newAjv().compile(configJsonSchema());
  if (whole(value)) return [];
  return (whole.errors ?? []).map((error) => `${error.instancePath || "/"} ${error.message ?? ""}`);
}

/** YAML as an editor reads it: the YAML 1.2 core schema, merge keys resolved. */
export function yamlValue(text: string): unknown {
  const doc = parseDocument(text, { merge: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new Error(`not YAML: ${doc.errors[0]?.message}`);
  return doc.toJS({ maxAliasCount: 100 });
}

/** The schema of one key, by its key-docs path (`supervisor.workers[].limits.memory`). */
export function keySchema(schema: JsonSchema, path: string): JsonSchema {
  let node: JsonSchema = schema;
  for (const segment of path.split(".")) {
    const key = segment.replace(/\[\]$/, "");
    const found = propertyOf(node, key);
    if (found === undefined) throw new Error(`no key ${path} in the schema (at ${segment})`);
    node = found;
    if (segment.endsWith("[]")) {
      const items = itemsOf(node);
      if (items === undefined) throw new Error(`${path}: ${key} is not a list`);
      node = items;
    }
  }
  return node;
}

function alternatives(node: JsonSchema): JsonSchema[] {
  return [node, ...((node.anyOf as JsonSchema[] | undefined) ?? []).flatMap(alternatives)];
}

function propertyOf(node: JsonSchema, key: string): JsonSchema | undefined {
  for (const candidate of alternatives(node)) {
    const properties = candidate.properties as Record<string, JsonSchema> | undefined;
    if (properties?.[key] !== undefined) return properties[key];
  }
  return undefined;
}

function itemsOf(node: JsonSchema): JsonSchema | undefined {
  for (const candidate of alternatives(node)) if ([candidate.type].flat().includes("array") && typeof candidate.items === "object") return candidate.items as JsonSchema;
  return undefined;
}
