// `server.port_arg.value_template` is a Go text/template in the original. The only datum
// it was ever given is the port, so we accept literal text plus `{{.Port}}` actions (inner
// spaces allowed) and reject every other action: a template we cannot render exactly like
// Go would must fail at validation, not produce a wrong argument at run time.

const ACTION = /\{\{(.*?)\}\}/gs;
const PORT_ACTION = /^\s*\.Port\s*$/;

export type PortTemplate = { ok: true; render: (port: number) => string } | { ok: false; error: string };

export function parsePortTemplate(template: string): PortTemplate {
  const literals: string[] = [];
  let last = 0;
  let portActions = 0;
  for (const match of template.matchAll(ACTION)) {
    const inner = match[1] ?? "";
    if (!PORT_ACTION.test(inner)) {
      return { ok: false, error: `only {{.Port}} is supported in the template, found "{{${inner}}}"` };
    }
    literals.push(template.slice(last, match.index));
    last = match.index + match[0].length;
    portActions++;
  }
  const tail = template.slice(last);
  if (tail.includes("{{")) return { ok: false, error: `unclosed action "{{" in the template` };
  literals.push(tail);
  if (portActions === 0) return { ok: false, error: `must contain {{.Port}}, e.g. '{{.Port}}' or '--port={{.Port}}'` };
  // Rendered as plain text: the original ran this through html/template, which escapes
  // characters such as '&' or '<' inside an argument.
  return { ok: true, render: (port) => literals.join(String(port)) };
}
