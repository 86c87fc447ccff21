import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The domain is pure: no I/O, no clock, no randomness, no process. The simulator relies on it.
const DOMAIN_PURITY = {
  files: ["src/domain/**/*.ts"],
  rules: {
    "no-restricted-imports": ["error", { patterns: [{ group: ["node:*", "fs", "child_process", "net", "http", "os", "process", "timers", "crypto"], message: "src/domain is pure: inject I/O, time and randomness instead." }] }],
    "no-restricted-globals": ["error",
      { name: "process", message: "src/domain is pure: no process." },
      { name: "setTimeout", message: "src/domain is pure: timers are commands." },
      { name: "setInterval", message: "src/domain is pure: timers are commands." },
      { name: "setImmediate", message: "src/domain is pure: timers are commands." },
      { name: "queueMicrotask", message: "src/domain is pure." },
      { name: "performance", message: "src/domain is pure: time comes in as nowMs." },
      { name: "Date", message: "src/domain is pure: time comes in as nowMs." },
      { name: "require", message: "src/domain is pure." },
      { name: "Buffer", message: "src/domain is pure." },
    ],
    "no-restricted-properties": ["error", { object: "Math", property: "random", message: "src/domain is pure: randomness is injected." }],
  },
};

export default tseslint.config(
  // test/.mutants: copies of src/domain with a rule broken, written by test/unit/sim/mutations.test.ts.
  { ignores: ["dist/**", "node_modules/**", "coverage/**", "envoy/**", "haproxy/**", "test/.mutants/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly", setImmediate: "readonly", URL: "readonly" } },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  DOMAIN_PURITY,
  // dist/monoceros-loader.cjs: CommonJS on purpose (Node's ES module loader costs start-up time).
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", __dirname: "readonly", module: "writable" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
