import { defineConfig } from "vitest/config";

// Two projects: `unit` uses in-memory workers only and is fast; `integration` starts real
// processes (and proxies) and polls with generous bounds.
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 30_000 } },
      { test: { name: "integration", include: ["test/integration/**/*.test.ts"], testTimeout: 60_000, hookTimeout: 60_000, fileParallelism: false } },
    ],
  },
});
