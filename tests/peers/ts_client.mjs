#!/usr/bin/env node
// The TypeScript SDK's Client + StreamableHTTPClientTransport driving a full
// MCP flow against a URL, one JSON line per step on stdout, exit 1 on failure.
//
//   node ts_client.mjs URL [--server everything|py]
//
// Steps: initialize, tools/list, tools/call, a progress-reporting tool (arrival
// times recorded), resources/read, prompts/get, the GET stream (opened by the
// transport after initialize), and DELETE (terminateSession).
// Env MCP_HEADERS: JSON object of extra HTTP headers for every request.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const url = process.argv[2];
const server = process.argv.includes("--server") ? process.argv[process.argv.indexOf("--server") + 1] : "everything";
const NAMES = {
  everything: {
    echo: ["echo", { message: "hi" }],
    slow: ["trigger-long-running-operation", { duration: 2, steps: 4 }],
    prompt: ["simple-prompt", {}],
  },
  py: {
    echo: ["echo", { text: "hi" }],
    slow: ["slow_progress", { steps: 4, interval_ms: 400 }],
    prompt: ["greet", { name: "Ada" }],
  },
}[server];

const emit = (step, ok = true, detail = {}) => console.log(JSON.stringify({ step, ok, ...detail }));
const headers = JSON.parse(process.env.MCP_HEADERS || "{}");

async function main() {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: "mcp-edge-ts-test", version: "1.0.0" });
  await client.connect(transport);
  emit("initialize", true, { sessionId: transport.sessionId, protocolVersion: transport.protocolVersion });

  const tools = await client.listTools();
  emit("tools/list", tools.tools.length > 0, { count: tools.tools.length });

  const [echoName, echoArgs] = NAMES.echo;
  const r = await client.callTool({ name: echoName, arguments: echoArgs });
  const text = r.content.map((c) => c.text || "").join("");
  emit("tools/call", !r.isError && text.includes("hi"), { text });

  const [slowName, slowArgs] = NAMES.slow;
  const arrivals = [];
  const start = Date.now();
  const sr = await client.callTool({ name: slowName, arguments: slowArgs }, undefined, {
    onprogress: () => arrivals.push(Date.now() - start),
    timeout: 30000,
  });
  emit("progress", !sr.isError && arrivals.length === slowArgs.steps, {
    arrivals_ms: arrivals,
    started_ms: start,
    result: sr.content.map((c) => c.text || "").join(""),
  });

  const res = await client.listResources();
  const uri = res.resources[0].uri;
  const rr = await client.readResource({ uri });
  emit("resources/read", rr.contents.length > 0, { uri });

  const [pName, pArgs] = NAMES.prompt;
  const pr = await client.getPrompt({ name: pName, arguments: pArgs });
  emit("prompts/get", pr.messages.length > 0);

  await transport.terminateSession();
  emit("delete", transport.sessionId === undefined);
  await client.close();
  emit("done");
}

main().catch((e) => {
  emit("error", false, { error: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
