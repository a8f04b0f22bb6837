// A browser client of the functions, typed only by what openapi-typescript generates from openapi.json.
// `tsc --noEmit` must accept it; the @ts-expect-error lines must stay errors (the types are not `any`).
import type { components, paths } from "./generated/api";

type CreateAgent = paths["/create_agent"]["post"];
type SendMessage = paths["/send_message"]["post"];
type CreateAgentBody = CreateAgent["requestBody"]["content"]["application/json"];
type SendMessageBody = SendMessage["requestBody"]["content"]["application/json"];
export type Agent = components["schemas"]["AgentPublic"];
type ReleaseVersion = paths["/release_version"]["post"];
type ReleaseBody = ReleaseVersion["requestBody"]["content"]["application/json"];
export type Release = components["schemas"]["ReleasePublic"];
export type Version = components["schemas"]["CharacterVersion"];
export type ApiError = components["schemas"]["ErrorEnvelope"]["error"];

export class CallFailed extends Error {
  constructor(readonly status: number, readonly error: ApiError) {
    super(`${error.code}: ${error.message}`);
  }
}

async function call<T>(base: string, name: string, token: string, body: unknown,
                       headers: Record<string, string> = {}): Promise<T> {
  const resp = await fetch(`${base}/${name}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  if (!resp.ok) {
    const failed = (await resp.json()) as components["schemas"]["ErrorEnvelope"];
    throw new CallFailed(resp.status, failed.error);
  }
  return (await resp.json()) as T;
}

export async function createAgent(base: string, token: string, character: CreateAgentBody["character"],
                                  idempotencyKey?: string): Promise<{ agent: Agent; created: boolean }> {
  const body: CreateAgentBody = { character, runtime: "process", policy: { idle_timeout_minutes: 30 } };
  const headers: Record<string, string> = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
  const answer = await call<CreateAgent["responses"]["201"]["content"]["application/json"]>(
    base, "create_agent", token, body, headers);
  const status: Agent["status"] = answer.agent.status;
  if (status === "error") {
    console.warn(`agent ${answer.agent.id} did not start: ${answer.agent.status_reason ?? "no reason given"}`);
  }
  return { agent: answer.agent, created: answer.created };
}

export async function sendMessage(base: string, token: string, agentId: string, text: string): Promise<string[]> {
  const body: SendMessageBody = { agent_id: agentId, text, wake_timeout_s: 60 };
  const answer = await call<SendMessage["responses"]["200"]["content"]["application/json"]>(
    base, "send_message", token, body);
  if (answer.woke) {
    console.info(`agent ${answer.agent_id} was woken for this message`);
  }
  return answer.replies.map((reply) => reply.text);
}

type ListAgents = paths["/list_agents"]["get"];
type ListAgentsQuery = NonNullable<ListAgents["parameters"]["query"]>;
type AgentPage = ListAgents["responses"]["200"]["content"]["application/json"];

// Every agent, a page at a time: each answer's next_cursor is the next request's cursor.
export async function everyAgent(base: string, token: string, status?: ListAgentsQuery["status"]): Promise<Agent[]> {
  const agents: Agent[] = [];
  let cursor: string | null = null;
  do {
    const query: ListAgentsQuery = { limit: 200, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) };
    const params = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
    const resp = await fetch(`${base}/list_agents?${params}`, { headers: { Authorization: `Bearer ${token}` } });
    const page = (await resp.json()) as AgentPage;
    agents.push(...page.agents);
    cursor = page.next_cursor;
  } while (cursor);
  return agents;
}

export async function example(base: string, token: string): Promise<string[]> {
  const { agent } = await createAgent(base, token, { name: "Eliza", bio: ["A helpful assistant."] });
  try {
    return await sendMessage(base, token, agent.id, "hello");
  } catch (err) {
    if (err instanceof CallFailed && err.status === 503) {
      return [`try again: ${err.error.details.map((d) => d.loc.join(".")).join(", ")}`];
    }
    throw err;
  }
}

// Release a new version blue/green with one scripted smoke test; say which version serves after it.
export async function releaseVersion(base: string, token: string, agent: Agent,
                                     character: NonNullable<ReleaseBody["character"]>): Promise<string> {
  const body: ReleaseBody = {
    agent_id: agent.id, character, change: "minor", grace_seconds: 60,
    test_cases: [{ name: "greets", turns: [{ message: "hello", expect: { contains: ["hello"], absent: ["error"] } }] }],
  };
  const answer = await call<ReleaseVersion["responses"]["200"]["content"]["application/json"]>(
    base, "release_version", token, body);
  const release: Release = answer.release;
  const failed = release.smoke.filter((result) => !result.passed).map((result) => result.name);
  const semver: Version["semver"] = agent.character_semver ?? "unknown";
  return release.serving === "green"
    ? `version ${release.to_version} serves (was ${semver})`
    : `${semver} still serves: ${release.reason ?? failed.join(", ")}`;
}

// What the API refuses, the types refuse too.
// @ts-expect-error send_message needs text
export const noText: SendMessageBody = { agent_id: "6f1c1d5e-0000-4000-8000-000000000000" };
// @ts-expect-error a runtime the platform does not know
export const unknownRuntime: CreateAgentBody["runtime"] = "k8s";
// @ts-expect-error an agent status is one of the documented states
export const unknownStatus: Agent["status"] = "sleeping";
// @ts-expect-error a page's size is a number
export const textLimit: ListAgentsQuery = { limit: "200" };
// @ts-expect-error the character needs a name
export const nameless: CreateAgentBody["character"] = { bio: "no name" };
// @ts-expect-error a change is major, minor or patch
export const hugeChange: ReleaseBody["change"] = "huge";
