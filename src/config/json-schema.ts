// The JSON Schema of the config file, for editors (yaml-language-server and its clients: VS Code's
// YAML extension, Neovim, Helix…) and for `monoceros schema`. Generated from the loader's own zod
// schema (schema.ts), never written by hand: zod gives the shape, the required keys, the bounds and
// the enums; key-docs.ts adds each key's description, default and unit; json-schema-values.ts
// restates the rules zod cannot express (durations, sizes, templates, addresses) as patterns.
// Draft-07: every yaml-language-server release validates it (2019-09 and 2020-12 only from 1.20).
import { z } from "zod";
import { VALUE_RULES, caselessPattern, type JsonSchema, type ValueRule } from "./json-schema-values.js";
import { KEY_DOCS } from "./key-docs.js";
import { configSchema, STRING_FIELD_PATHS } from "./schema.js";

/** Where the repository keeps the generated schema (examples point at it); `make schema` rewrites it. */
export const SCHEMA_FILE = "schema/monoceros.schema.json";

/** Where a node is: its key path as key-docs.ts writes it, and as STRING_FIELD_PATHS writes it. */
interface At {
  doc: string;
  loader: readonly string[];
}

/** What YAML gives for a scalar written where the loader reads the text (a number or boolean, see STRING_FIELD_PATHS). */
const SCALAR_KEPT_AS_TEXT: JsonSchema = { type: ["number", "boolean"] };

const STRING_FIELDS = new Set(STRING_FIELD_PATHS.map((path) => path.join(".")));

export function configJsonSchema(): JsonSchema {
  const generated = z.toJSONSchema(configSchema, { target: "draft-07", io: "input", unrepresentable: "any", override: carryRegexChecks }) as JsonSchema;
  const { $schema, ...root } = generated;
  return {
    $schema,
    $comment: "Generated from Monoceros's config loader (src/config/schema.ts, key-docs.ts) by `monoceros schema`; do not edit.",
    title: "Monoceros config",
    description: "The YAML config of Monoceros, a multi-process supervisor (monoceros -c <file>). This schema checks each key on its own; monoceros -k also checks keys against each other.",
    ...simplifyUnions(decorate(root, { doc: "", loader: [] })),
  };
}

/** The schema as `monoceros schema` prints it and the repository keeps it: stable, ending in a newline. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

/** Every key path (as key-docs.ts writes them: list entries as `[]`, mapping values as `.*`) the schema has, each with whether it is documented: for the tests. */
export function schemaKeyPaths(schema: JsonSchema): { path: string; described: boolean }[] {
  const found = new Map<string, boolean>();
  const note = (node: unknown, path: string) => {
    found.set(path, (found.get(path) ?? false) || (isSchema(node) && typeof node.description === "string" && node.description !== ""));
    visit(node, path);
  };
  const visit = (node: unknown, at: string): void => {
    if (!isSchema(node)) return;
    if (isSchema(node.properties)) for (const [key, child] of Object.entries(node.properties)) note(child, at === "" ? key : `${at}.${key}`);
    if (isSchema(node.additionalProperties)) note(node.additionalProperties, `${at}.*`);
    for (const item of [node.items, node.additionalItems].flat()) if (isSchema(item)) note(item, `${at}[]`);
    for (const keyword of ["anyOf", "oneOf", "allOf"]) if (Array.isArray(node[keyword])) for (const sub of node[keyword]) visit(sub, at);
  };
  visit(schema, "");
  return [...found].map(([path, described]) => ({ path, described }));
}

function decorate(node: JsonSchema, at: At): JsonSchema {
  const rule = VALUE_RULES[at.doc];
  let result = decorateChildren(rule === undefined ? node : applyRule(node, rule), at);
  if (STRING_FIELDS.has(at.loader.join("."))) result = acceptScalarsAsText(result);
  return result;
}

/** Decorates what is below a node: its keys, entries, values and the alternatives of the node itself. */
function decorateChildren(node: JsonSchema, at: At): JsonSchema {
  const out: JsonSchema = { ...node };
  if (isSchema(node.properties)) {
    const required = Array.isArray(node.required) ? (node.required as string[]) : [];
    out.properties = Object.fromEntries(
      Object.entries(node.properties).map(([key, child]) => {
        const childAt = { doc: at.doc === "" ? key : `${at.doc}.${key}`, loader: [...at.loader, key] };
        return [key, document(decorate(child as JsonSchema, childAt), childAt.doc, required.includes(key))];
      }),
    );
  }
  const entryAt = { doc: `${at.doc}[]`, loader: [...at.loader, "*"] };
  if (Array.isArray(node.items)) out.items = node.items.map((item: JsonSchema) => decorate(item, entryAt));
  else if (isSchema(node.items)) out.items = decorate(node.items, entryAt);
  if (isSchema(node.additionalItems)) out.additionalItems = decorate(node.additionalItems, entryAt);
  if (isSchema(node.additionalProperties)) {
    const valueAt = { doc: `${at.doc}.*`, loader: [...at.loader, "*"] };
    out.additionalProperties = document(decorate(node.additionalProperties, valueAt), valueAt.doc, false);
  }
  for (const keyword of ["anyOf", "oneOf", "allOf"]) {
    if (Array.isArray(node[keyword])) out[keyword] = (node[keyword] as JsonSchema[]).map((sub) => decorateChildren(sub, at));
  }
  return out;
}

/** Applies a value rule to the non-null part of a key's schema; an empty YAML value (null) stays allowed where it was. */
function applyRule(node: JsonSchema, rule: ValueRule): JsonSchema {
  const nullable = (Array.isArray(node.anyOf) && node.anyOf.some(isNullType)) || (Array.isArray(node.type) && node.type.includes("null"));
  if ("replace" in rule) {
    if (!nullable) return rule.replace;
    if (Array.isArray(rule.replace.type) && rule.replace.anyOf === undefined) return { ...rule.replace, type: [...rule.replace.type, "null"] };
    const alternatives = Array.isArray(rule.replace.anyOf) && Object.keys(rule.replace).length === 1 ? (rule.replace.anyOf as JsonSchema[]) : [rule.replace];
    return { anyOf: [...alternatives, { type: "null" }] };
  }
  if (Array.isArray(node.anyOf)) return { ...node, anyOf: (node.anyOf as JsonSchema[]).map((sub) => (isNullType(sub) ? sub : refine(sub, rule.refine))) };
  return refine(node, rule.refine);
}

/** Adds keywords: merged into what the node has where they do not clash, joined through allOf where they do. */
function refine(node: JsonSchema, keywords: JsonSchema): JsonSchema {
  const merged = mergeWithoutClash(node, keywords);
  return merged ?? { ...node, allOf: [...((node.allOf as JsonSchema[] | undefined) ?? []), keywords] };
}

function mergeWithoutClash(into: JsonSchema, from: JsonSchema): JsonSchema | null {
  const out: JsonSchema = { ...into };
  for (const [keyword, value] of Object.entries(from)) {
    if (!(keyword in into)) out[keyword] = value;
    else if (isSchema(into[keyword]) && isSchema(value)) {
      const inner = mergeWithoutClash(into[keyword] as JsonSchema, value);
      if (inner === null) return null;
      out[keyword] = inner;
    } else if (JSON.stringify(into[keyword]) !== JSON.stringify(value)) return null;
  }
  return out;
}

/** A string key where the loader keeps a number's or boolean's source text (`- 5` is "5"): the editor must accept those too. */
function acceptScalarsAsText(node: JsonSchema): JsonSchema {
  if (Array.isArray(node.anyOf) && Object.keys(node).length === 1) return { anyOf: [...(node.anyOf as JsonSchema[]), SCALAR_KEPT_AS_TEXT] };
  return { anyOf: [node, SCALAR_KEPT_AS_TEXT] };
}

/** Puts the key's description (with its default and unit, which editors show on hover) and its default first. */
function document(node: JsonSchema, path: string, required: boolean): JsonSchema {
  const doc = KEY_DOCS[path];
  if (doc === undefined) return node;
  const defaultText = doc.defaultText ?? (doc.default === undefined ? undefined : JSON.stringify(doc.default));
  const sentences = [doc.description, required ? "Required." : defaultText === undefined ? "" : `Default: ${defaultText}.`, doc.unit === undefined ? "" : `Unit: ${doc.unit}.`];
  return { description: sentences.filter((s) => s !== "").join(" "), ...(doc.default === undefined ? {} : { default: doc.default }), ...node };
}

/** The keywords that apply to each JSON type (and only to it). */
const KEYWORDS_OF_TYPE: Readonly<Record<string, readonly string[]>> = {
  string: ["minLength", "maxLength", "pattern", "patternErrorMessage"],
  number: ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
  integer: ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"],
  boolean: [],
  null: [],
  array: ["items", "additionalItems", "minItems", "maxItems"],
  object: ["properties", "required", "additionalProperties", "propertyNames", "minProperties", "maxProperties"],
};

/**
 * `anyOf: [{type: integer, minimum: 0}, {type: string, pattern: …}, {type: null}]` is
 * `{type: [integer, string, null], minimum: 0, pattern: …}`: the same set of values, since each
 * keyword applies to its own type only, and an editor explains a mismatch by the keyword that
 * failed ("must be a size such as 512MiB") rather than by the alternative it guessed was meant.
 */
function simplifyUnions(node: unknown): JsonSchema {
  if (!isSchema(node)) return node as JsonSchema;
  const out: JsonSchema = Object.fromEntries(
    Object.entries(node).map(([keyword, value]) => [
      keyword,
      keyword === "properties" && isSchema(value)
        ? Object.fromEntries(Object.entries(value).map(([key, child]) => [key, simplifyUnions(child)]))
        : Array.isArray(value) && ["anyOf", "allOf", "oneOf", "items"].includes(keyword)
          ? value.map(simplifyUnions)
          : isSchema(value) && ["items", "additionalItems", "additionalProperties", "propertyNames", "not"].includes(keyword)
            ? simplifyUnions(value)
            : value,
    ]),
  );
  if (!Array.isArray(out.anyOf)) return out;
  const alternatives = (out.anyOf as JsonSchema[]).flatMap((sub) => (Array.isArray(sub.anyOf) && Object.keys(sub).length === 1 ? (sub.anyOf as JsonSchema[]) : [sub]));
  const merged = mergeByType(alternatives);
  if (merged === null) return { ...out, anyOf: alternatives };
  const { anyOf: _anyOf, ...annotations } = out;
  return { ...annotations, ...merged };
}

/** One schema for alternatives that each assert other types and hold only keywords of those types; null if they do not. */
function mergeByType(alternatives: readonly JsonSchema[]): JsonSchema | null {
  const types: string[] = [];
  const merged: JsonSchema = {};
  for (const alternative of alternatives) {
    const own = [alternative.type].flat();
    if (own.some((type) => typeof type !== "string" || KEYWORDS_OF_TYPE[type] === undefined || types.includes(type))) return null;
    const allowed = new Set(own.flatMap((type) => KEYWORDS_OF_TYPE[type as string] ?? []));
    for (const [keyword, value] of Object.entries(alternative)) {
      if (keyword === "type") continue;
      if (!allowed.has(keyword) || keyword in merged) return null;
      merged[keyword] = value;
    }
    types.push(...(own as string[]));
  }
  // integer and number share their keywords: one bound could not serve two alternatives.
  if (types.includes("integer") && types.includes("number") && Object.keys(merged).some((k) => KEYWORDS_OF_TYPE.number?.includes(k))) return null;
  return { type: types.length === 1 ? types[0] : types, ...merged };
}

/**
 * zod writes a RegExp's source as the pattern and drops its flags and its message: a
 * case-insensitive one is rewritten to match alike, and the message -k prints becomes the one an
 * editor shows (patternErrorMessage, which yaml-language-server and VS Code read).
 */
function carryRegexChecks(context: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  type RegexCheck = { _zod?: { def?: { pattern?: unknown; error?: unknown } } };
  const checks = (context.zodSchema as { _zod?: { def?: { checks?: RegexCheck[] } } })._zod?.def?.checks ?? [];
  for (const check of checks) {
    const regex = check._zod?.def?.pattern;
    if (!(regex instanceof RegExp)) continue;
    if (/[msy]/.test(regex.flags)) throw new Error(`the flags of /${regex.source}/${regex.flags} have no JSON Schema equivalent`);
    const error = check._zod?.def?.error;
    const message = typeof error === "function" ? (error as (issue: unknown) => unknown)({ code: "invalid_format", input: "" }) : undefined;
    const targets = [context.jsonSchema, ...((context.jsonSchema.allOf as JsonSchema[] | undefined) ?? [])].filter((target) => target.pattern === regex.source);
    for (const target of targets) {
      if (regex.flags.includes("i")) target.pattern = caselessPattern(regex.source);
      if (typeof message === "string") target.patternErrorMessage = message;
    }
  }
}

const isSchema = (value: unknown): value is JsonSchema => typeof value === "object" && value !== null && !Array.isArray(value);
const isNullType = (value: unknown): boolean => isSchema(value) && value.type === "null" && Object.keys(value).length === 1;
