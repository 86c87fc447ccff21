import { describe, expect, it } from "vitest";
import { parsePortTemplate } from "../../../src/config/port-template.js";

describe("port value template", () => {
  it.each([
    ["{{.Port}}", "9090"],
    ["{{ .Port }}", "9090"],
    ["--port={{.Port}}", "--port=9090"],
    ["127.0.0.1:{{.Port}}", "127.0.0.1:9090"],
    ["a&b<{{.Port}}>", "a&b<9090>"],
    ["{{.Port}}-{{.Port}}", "9090-9090"],
  ])("renders %j as %j (plain text, not HTML-escaped)", (template, expected) => {
    const parsed = parsePortTemplate(template);
    expect(parsed.ok && parsed.render(9090)).toBe(expected);
  });

  it.each(["{{.Host}}", "{{.Port | printf}}", "{{port}}", "9090", "{{.Port", "{{- .Port -}}"])("rejects %j", (template) => {
    expect(parsePortTemplate(template).ok).toBe(false);
  });
});
