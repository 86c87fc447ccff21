import { describe, expect, it } from "vitest";
import { formatDurationMs, parseGoDuration } from "../../../src/config/duration.js";

const ms = (text: string) => {
  const result = parseGoDuration(text);
  if (!result.ok) throw new Error(result.error);
  return result.ms;
};

describe("Go duration syntax", () => {
  it.each([
    ["500ms", 500],
    ["15s", 15_000],
    ["4h", 14_400_000],
    ["1h30m", 5_400_000],
    ["1.5s", 1500],
    [".5s", 500],
    ["1.s", 1000],
    ["2m3s", 123_000],
    ["500us", 0.5],
    ["500µs", 0.5],
    ["1000ns", 0.001],
    ["0", 0],
    ["0s", 0],
    ["+5s", 5000],
    ["-5s", -5000],
  ])("parses %s as %d ms", (text, expected) => {
    expect(ms(text)).toBeCloseTo(expected, 9);
  });

  it("rejects a bare number with a hint to add a unit (the original read it as nanoseconds)", () => {
    const result = parseGoDuration("15");
    expect(result).toEqual({ ok: false, error: expect.stringContaining('"15s"') });
  });

  it.each(["", "s", "5x", "1.2.3s", "5 s", "h1", "1e3s", "."])("rejects %j", (text) => {
    expect(parseGoDuration(text).ok).toBe(false);
  });

  it("rejects durations past Go's int64 nanoseconds", () => {
    expect(parseGoDuration("2562048h").ok).toBe(false);
    expect(parseGoDuration("2562047h").ok).toBe(true);
  });

  it("formats milliseconds like Go's Duration.String", () => {
    expect(formatDurationMs(5_400_000)).toBe("1h30m");
    expect(formatDurationMs(1500)).toBe("1.5s");
    expect(formatDurationMs(500)).toBe("500ms");
    expect(formatDurationMs(0)).toBe("0s");
  });
});
