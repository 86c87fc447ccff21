import { describe, expect, it } from "vitest";
import { parseListenAddress } from "../../../src/config/listen-address.js";

describe("listen address", () => {
  it.each([
    ["0.0.0.0:8080", "0.0.0.0", 8080, "ipv4"],
    ["127.0.0.1:8080", "127.0.0.1", 8080, "ipv4"],
    ["[::]:8080", "::", 8080, "ipv6"],
    ["[::1]:8080", "::1", 8080, "ipv6"],
    ["[::ffff:127.0.0.1]:80", "::ffff:127.0.0.1", 80, "ipv6"],
    [":8080", "0.0.0.0", 8080, "ipv4"],
    ["10.1.2.3:1", "10.1.2.3", 1, "ipv4"],
    ["10.1.2.3:65535", "10.1.2.3", 65535, "ipv4"],
  ])("reads %j as host %j, port %j, %s", (text, host, port, family) => {
    expect(parseListenAddress(text)).toEqual({ ok: true, host, port, family });
  });

  it.each([
    ["localhost:8080", /the host "[a-z.]+" is not an IP address, and a listen address needs one/],
    ["example.com:443", /the host "[a-z.]+" is not an IP address, and a listen address needs one/],
    ["[localhost]:8080", /not an IPv6 address/],
    ["[127.0.0.1]:8080", /not an IPv6 address/],
    ["::1:8080", /put an IPv6 address in brackets/],
    ["127.0.0.1", /needs a port after a colon/],
    ["", /needs a port after a colon/],
    ["127.0.0.1:", /must be a number from 1 to 65535, got ""/],
    ["127.0.0.1:0", /must be a number from 1 to 65535, got "0"/],
    ["127.0.0.1:65536", /must be a number from 1 to 65535/],
    ["127.0.0.1:-1", /must be a number from 1 to 65535/],
    ["127.0.0.1:80x", /must be a number from 1 to 65535/],
    [" 127.0.0.1:8080", /is not an IP address/],
    ["256.0.0.1:8080", /is not an IP address/],
    [`${"1".repeat(200)}:80`, /too long/],
  ])("refuses %j", (text, problem) => {
    const parsed = parseListenAddress(text);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.error).toMatch(problem);
    expect(parsed.error).not.toContain("\n");
  });

  it("quotes the text in the error, on one line even when it holds a newline", () => {
    const parsed = parseListenAddress("web\nhost:80");
    expect(parsed).toEqual({ ok: false, error: expect.stringContaining('"web\\nhost:80"') });
    expect(parsed.ok || parsed.error.includes("\n")).toBe(false);
  });
});
