// Checks objects against Envoy's own API schema: the .proto files that @grpc/grpc-js-xds ships,
// loaded with protobufjs. protobufjs's fromObject ignores unknown fields, so this walks the object
// itself: every key must be a field of the message (snake_case or JSON name), every value of the
// field's type, every `@type` of an Any must resolve, and at most one member of a oneof may be set.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import protobuf from "protobufjs";

const require = createRequire(import.meta.url);
const XDS_DEPS = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
const INCLUDE = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((folder) => join(XDS_DEPS, folder));
INCLUDE.push(dirname(require.resolve("protobufjs/package.json")));

const ENTRY_FILES = [
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "envoy/service/discovery/v3/discovery.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
];

let root: protobuf.Root | undefined;

export function envoyRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const loaded = new protobuf.Root();
  loaded.resolvePath = (_origin, target) => {
    if (existsSync(target)) return target;
    for (const folder of INCLUDE) {
      const candidate = join(folder, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  loaded.loadSync(ENTRY_FILES, { keepCase: true });
  loaded.resolveAll();
  root = loaded;
  return loaded;
}

const INTEGER_TYPES = new Set(["int32", "uint32", "sint32", "fixed32", "sfixed32"]);
const LONG_TYPES = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);
const WRAPPERS: Record<string, string> = {
  ".google.protobuf.UInt32Value": "uint32", ".google.protobuf.Int32Value": "int32", ".google.protobuf.UInt64Value": "uint64",
  ".google.protobuf.Int64Value": "int64", ".google.protobuf.BoolValue": "bool", ".google.protobuf.StringValue": "string",
  ".google.protobuf.DoubleValue": "double", ".google.protobuf.FloatValue": "float",
};

/** Every problem, one line each with its path; empty when the object fits the message type. */
export function checkEnvoyObject(typeName: string, value: unknown): string[] {
  const errors: string[] = [];
  checkMessage(envoyRoot().lookupType(typeName), value, typeName, errors);
  return errors;
}

function checkMessage(type: protobuf.Type, value: unknown, path: string, errors: string[]): void {
  if (type.fullName === ".google.protobuf.Any") return checkAny(value, path, errors);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    errors.push(`${path}: expected a ${type.fullName} message, got ${JSON.stringify(value)}`);
    return;
  }
  const oneofsSet = new Map<string, string>();
  for (const [key, fieldValue] of Object.entries(value)) {
    const field = type.fields[key] ?? Object.values(type.fields).find((f) => camel(f.name) === key);
    if (field === undefined) {
      errors.push(`${path}.${key}: unknown field of ${type.fullName}`);
      continue;
    }
    if (field.partOf) {
      const other = oneofsSet.get(field.partOf.name);
      if (other !== undefined) errors.push(`${path}.${key}: oneof ${field.partOf.name} already set by ${other}`);
      oneofsSet.set(field.partOf.name, key);
    }
    checkField(field, fieldValue, `${path}.${key}`, errors);
  }
}

function checkField(field: protobuf.Field, value: unknown, path: string, errors: string[]): void {
  if (field instanceof protobuf.MapField) {
    if (typeof value !== "object" || value === null) errors.push(`${path}: expected a map`);
    else for (const [key, item] of Object.entries(value)) checkSingle(field, item, `${path}[${key}]`, errors);
    return;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) {
      errors.push(`${path}: expected a list`);
      return;
    }
    value.forEach((item, index) => checkSingle(field, item, `${path}[${index}]`, errors));
    return;
  }
  checkSingle(field, value, path, errors);
}

function checkSingle(field: protobuf.Field, value: unknown, path: string, errors: string[]): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    if (!(typeof value === "string" && value in resolved.values) && !(typeof value === "number" && Object.values(resolved.values).includes(value))) {
      errors.push(`${path}: ${JSON.stringify(value)} is not a value of ${resolved.fullName} (${Object.keys(resolved.values).join(", ")})`);
    }
    return;
  }
  if (resolved instanceof protobuf.Type) {
    const wrapped = WRAPPERS[resolved.fullName];
    if (wrapped !== undefined) return checkScalar(wrapped, value, path, errors);
    if (resolved.fullName === ".google.protobuf.Duration") {
      if (typeof value !== "string" || !/^-?\d+(\.\d+)?s$/.test(value)) errors.push(`${path}: expected a duration such as "1.5s", got ${JSON.stringify(value)}`);
      return;
    }
    if (resolved.fullName === ".google.protobuf.Struct" || resolved.fullName === ".google.protobuf.Value") return;
    return checkMessage(resolved, value, path, errors);
  }
  checkScalar(field.type, value, path, errors);
}

function checkScalar(type: string, value: unknown, path: string, errors: string[]): void {
  const ok =
    type === "string" ? typeof value === "string"
    : type === "bool" ? typeof value === "boolean"
    : type === "bytes" ? typeof value === "string"
    : type === "double" || type === "float" ? typeof value === "number"
    : INTEGER_TYPES.has(type) ? Number.isInteger(value) && (!type.startsWith("uint") || (value as number) >= 0)
    : LONG_TYPES.has(type) ? Number.isInteger(value) || (typeof value === "string" && /^-?\d+$/.test(value))
    : false;
  if (!ok) errors.push(`${path}: expected ${type}, got ${JSON.stringify(value)}`);
}

function checkAny(value: unknown, path: string, errors: string[]): void {
  if (typeof value !== "object" || value === null) {
    errors.push(`${path}: expected an Any with @type`);
    return;
  }
  const { "@type": url, ...rest } = value as Record<string, unknown>;
  if (typeof url !== "string" || !url.includes("/")) {
    errors.push(`${path}: an Any needs "@type": "type.googleapis.com/<message>"`);
    return;
  }
  let type: protobuf.Type;
  try {
    type = envoyRoot().lookupType(url.slice(url.lastIndexOf("/") + 1));
  } catch {
    errors.push(`${path}: @type ${url} does not resolve to a known message`);
    return;
  }
  checkMessage(type, rest, `${path}<${type.name}>`, errors);
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}
