// Parses an AsyncAPI document with the real parser (@asyncapi/parser, package.json) and
// prints JSON: the diagnostics, and what the document says per channel and message, for
// tests/integration/test_event_contract.py to compare with docs/events.md and the code.
const fs = require("fs");
const path = require("path");
const { Parser, fromFile } = require("@asyncapi/parser");

async function main(file) {
  const parser = new Parser();
  const { document, diagnostics } = await fromFile(parser, path.resolve(file)).parse();
  const out = { diagnostics: diagnostics.map((d) => ({ severity: d.severity, code: d.code, message: d.message,
                                                       path: d.path.join(".") })), channels: {} };
  if (document) {
    for (const channel of document.channels()) {
      const kafka = channel.bindings().get("kafka");
      out.channels[channel.id()] = {
        address: channel.address(),
        kafka: kafka ? kafka.value() : null,
        messages: channel.messages().all().map((m) => ({
          name: m.name(),
          payload: m.hasPayload() ? m.payload().json() : null,
          headers: m.hasHeaders() ? m.headers().json() : null,
          key: m.bindings().get("kafka") ? m.bindings().get("kafka").value().key : null,
        })),
      };
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main(process.argv[2]).catch((err) => { console.error(err); process.exit(2); });
