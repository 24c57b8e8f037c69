// Parses an AsyncAPI document with the AsyncAPI parser (@asyncapi/parser) and prints each
// diagnostic as a line of JSON. Exits 1 if there is any of error severity, or no document.
//   node tests/asyncapi/validate.mjs path/to/asyncapi.json
import { readFile } from "node:fs/promises";
import { DiagnosticSeverity, Parser } from "@asyncapi/parser";

const text = await readFile(process.argv[2], "utf8");
const { document, diagnostics } = await new Parser().parse(text);
for (const d of diagnostics) {
  const severity = DiagnosticSeverity[d.severity] ?? d.severity;
  console.log(JSON.stringify({ severity, code: d.code, path: d.path.join("/"), message: d.message }));
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
process.exit(document === undefined || errors.length > 0 ? 1 : 0);
