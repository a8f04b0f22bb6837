// One ElizaOS 1.7.2 server for the agents of one owner, run by Paradyze's process runtime.
//
// It loads the pinned server and its plugins first, then waits for its claim: one JSON line on
// stdin naming the owner's uid, its home, its memory (PGlite folder), port and key. Booted ahead of
// need, it waits in the warm pool; a platform that goes away before claiming it closes stdin, and
// it exits. Claimed, it takes the owner's uid (when started as root), opens the owner's database
// and serves the ElizaOS REST API on 127.0.0.1.
//
// Agents are started and stopped in it through /_paradyze/agents/<id>/{start,stop,forget}, which
// only the server key opens. Every agent keeps a key of its own: a call with an agent's key is let
// through as the server's only while that agent runs here, and never to a path naming another of
// the agents here. Each agent's environment (model keys, the owner's secrets for it) becomes that
// agent's runtime settings, never the process's, so agents never see each other's.

import http from "node:http";

const app = process.env.PARADYZE_ELIZAOS_APP;
const load = (name) => import(Bun.resolveSync(name, app));
const { AgentServer } = await load("@elizaos/server");
const sqlPlugin = (await load("@elizaos/plugin-sql")).default;
// What a character's plugins resolve to, loaded now rather than at the first start.
for (const name of ["@elizaos/plugin-bootstrap", "@elizaos/plugin-openai", "@elizaos/plugin-anthropic",
                    "@elizaos/plugin-openrouter"]) {
  await load(name).catch(() => undefined);
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const keys = new Map(); // agent key -> agent id, for the agents running here
let server;

process.stdout.write("paradyze-host: loaded\n");
const line = await firstLine();
if (line === null) process.exit(0); // the platform went away before it needed this server
const claim = JSON.parse(line);

if (claim.uid !== undefined && process.getuid() === 0) {
  process.setgroups([]);
  process.setgid(claim.gid);
  process.setuid(claim.uid);
}
process.chdir(claim.home);
for (const [name, value] of Object.entries(claim.env)) process.env[name] = value;
const TOKEN = process.env.ELIZA_SERVER_AUTH_TOKEN;

const createServer = http.createServer;
http.createServer = (...args) => {
  const handler = args.pop();
  return createServer(...args, (req, res) => gate(req, res, handler));
};

server = new AgentServer();
await server.start({ port: Number(claim.port), dataDir: process.env.PGLITE_DATA_DIR });
if (process.env.SERVER_PORT !== String(claim.port)) {
  console.error(`paradyze-host: ElizaOS took port ${process.env.SERVER_PORT}, not ${claim.port}`);
  process.exit(3);
}
for (const id of claim.forget || []) await forget(id);
console.log(`paradyze-host: serving on ${claim.port}`);

function gate(req, res, handler) {
  const key = req.headers["x-api-key"];
  if (req.url.startsWith("/_paradyze/")) {
    if (key !== TOKEN) return reply(res, 401, { error: "server key required" });
    return control(req, res).catch((err) => reply(res, 500, { error: String(err?.message || err) }));
  }
  const agent = keys.get(key);
  if (agent !== undefined) {
    const others = (req.url.match(UUID) || []).filter((id) => id !== agent && server.getAgent(id.toLowerCase()));
    if (others.length) return reply(res, 403, { error: "this key opens only its own agent" });
    req.headers["x-api-key"] = TOKEN;
  }
  return handler(req, res);
}

async function control(req, res) {
  const [, , what, id, verb] = req.url.split("?")[0].split("/");
  if (what === "agents" && !id && req.method === "GET") {
    return reply(res, 200, { agents: server.getAllAgents().map((r) => r.agentId) });
  }
  if (what !== "agents" || !id || req.method !== "POST") return reply(res, 404, { error: "no such route" });
  const body = await readJson(req);
  if (verb === "start") await start(id, body);
  else if (verb === "stop") await stop(id);
  else if (verb === "forget") await forget(id);
  else return reply(res, 404, { error: "no such route" });
  return reply(res, 200, { agents: server.getAllAgents().map((r) => r.agentId) });
}

async function start(id, { character, settings, key }) {
  if (!server.getAgent(id)) {
    const plugins = [...(character.plugins || []), sqlPlugin];
    const [agentId] = await server.elizaOS.addAgents([{ character: { ...character, id }, plugins, settings }]);
    await server.elizaOS.startAgents([agentId]);
    const runtime = server.getAgent(agentId);
    if (!(await server.database.getAgent(agentId))) {
      await server.database.createAgent({ ...runtime.character, id: agentId });
    }
    await server.registerAgent(runtime);
  }
  for (const [k, agent] of keys) if (agent === id) keys.delete(k);
  keys.set(key, id);
}

async function stop(id) {
  for (const [k, agent] of keys) if (agent === id) keys.delete(k);
  if (server.getAgent(id)) await server.unregisterAgent(id);
}

async function forget(id) {
  await stop(id);
  if (await server.database.getAgent(id)) await server.database.deleteAgent(id);
}

async function firstLine() {
  let data = "";
  for await (const chunk of process.stdin) {
    data += chunk;
    const end = data.indexOf("\n");
    if (end >= 0) return data.slice(0, end);
  }
  return null;
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let data = "";
    req.on("data", (chunk) => { data += chunk; });
    req.on("end", () => { try { resolve(data ? JSON.parse(data) : {}); } catch (err) { reject(err); } });
    req.on("error", reject);
  });
}

function reply(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}
