// Go text/template actions in config strings. The original renders `server.port_arg.value_template`
// with the port as its only datum, so there we accept literal text plus `{{.Port}}` actions (inner
// spaces allowed). Health check commands may also name `{{.Pid}}` and `{{.WorkerId}}`. Every other
// action is rejected: a template we cannot render exactly like Go would must fail at validation,
// not produce a wrong argument at run time.

const ACTION = /\{\{(.*?)\}\}/gs;
const FIELD_ACTION = /^\s*\.([A-Za-z]+)\s*$/;

export type TemplateField = "Port" | "Pid" | "WorkerId";

export type Template =
  | { ok: true; fields: ReadonlySet<TemplateField>; render: (values: Partial<Record<TemplateField, string | number>>) => string }
  | { ok: false; error: string };

/** Parses literal text with `{{.Field}}` actions for the allowed fields. */
export function parseTemplate(template: string, allowed: readonly TemplateField[]): Template {
  const parts: (string | TemplateField)[] = [];
  const fields = new Set<TemplateField>();
  let last = 0;
  for (const match of template.matchAll(ACTION)) {
    const inner = match[1] ?? "";
    const field = FIELD_ACTION.exec(inner)?.[1] as TemplateField | undefined;
    if (field === undefined || !allowed.includes(field)) {
      return { ok: false, error: `only ${allowed.map((name) => `{{.${name}}}`).join(", ")} ${allowed.length === 1 ? "is" : "are"} supported in the template, found "{{${inner}}}"` };
    }
    parts.push(template.slice(last, match.index), field);
    fields.add(field);
    last = match.index + match[0].length;
  }
  const tail = template.slice(last);
  if (tail.includes("{{")) return { ok: false, error: `unclosed action "{{" in the template` };
  parts.push(tail);
  // Rendered as plain text: the original ran this through html/template, which escapes
  // characters such as '&' or '<' inside an argument.
  return {
    ok: true,
    fields,
    render: (values) => parts.map((part, index) => (index % 2 === 1 ? String(values[part as TemplateField] ?? "") : part)).join(""),
  };
}

export type PortTemplate = { ok: true; render: (port: number) => string } | { ok: false; error: string };

export function parsePortTemplate(template: string): PortTemplate {
  const parsed = parseTemplate(template, ["Port"]);
  if (!parsed.ok) return parsed;
  if (!parsed.fields.has("Port")) return { ok: false, error: `must contain {{.Port}}, e.g. '{{.Port}}' or '--port={{.Port}}'` };
  return { ok: true, render: (port) => parsed.render({ Port: port }) };
}
