/**
 * A session with the TypeScript client (src/index.ts) against a running server, step by step:
 *
 *     npx tsc && node dist/journey.js BASE_URL ADMIN_EMAIL ADMIN_PASSWORD
 *
 * BASE_URL is the server's origin: the document's paths carry /api/v1. Each step prints
 * `operationId status`, the same lines as clients/journey.py with the Python client;
 * tests/system/test_clients.py runs both against a live app whose login limit is low and compares
 * them. `tsc --strict` checks it: what a response must carry is read as typed, without casts.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

import { bearer, createApiClient, type paths, type Problem, type TokenPair } from "./src/index.js";

const PASSWORD = randomBytes(18).toString("base64url"); // for the accounts the journey makes
const LOGINS_BEFORE_429 = 50; // a bound: the test's app allows far fewer per window

/** What every openapi-fetch call resolves to: the typed answer, or the typed Problem. */
interface Result<T> {
  data?: T;
  error?: Problem;
  response: Response;
}

/** The body of the expected success; throws with what came instead. */
function answer<T>(step: string, result: Result<T>, status: number): T {
  if (result.response.status !== status || result.data === undefined) {
    throw new Error(`${step}: expected ${status}, got ${result.response.status}: ${JSON.stringify(result.error)}`);
  }
  console.log(step, status);
  return result.data;
}

/** The problem+json body of an expected error status. */
function problem(step: string, result: Result<unknown>, status: number): Problem {
  if (result.response.status !== status || result.error === undefined) {
    throw new Error(`${step}: expected a ${status} problem, got ${result.response.status}`);
  }
  console.log(step, status);
  return result.error;
}

function noContent(step: string, result: Result<unknown>): void {
  if (result.response.status !== 204) {
    throw new Error(`${step}: expected 204, got ${result.response.status}: ${JSON.stringify(result.error)}`);
  }
  console.log(step, 204);
}

/** [access, refresh]: both typed as always present, so no check is needed. */
function tokenPair(tokens: TokenPair): [string, string] {
  return [tokens.access_token, tokens.refresh_token];
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`not so: ${what}`);
}

/** Register, log in, read and update the profile (If-Match), refresh, list sessions, log out. */
async function userJourney(baseUrl: string): Promise<void> {
  const api = createApiClient(baseUrl);
  const email = `journey-${randomUUID().slice(0, 8)}@example.com`;
  const registered = answer(
    "register",
    await api.POST("/api/v1/auth/register", { body: { email, password: PASSWORD, display_name: "Ts" } }),
    201,
  );
  // A 202 Accepted (REGISTRATION_ENUMERATION_SAFE=true) has no user in it; answer() already refused it.
  if (!("id" in registered)) throw new Error("register: no user in the answer");
  const user = registered;
  check(user.email === email && user.role === "user" && user.email_verified_at === null, "a new plain user");
  let [access, refresh] = tokenPair(
    answer("login", await api.POST("/api/v1/auth/login", { body: { email, password: PASSWORD } }), 200),
  );

  const read = await api.GET("/api/v1/users/me", { headers: bearer(access) });
  check(answer("getMe", read, 200).id === user.id, "getMe is the registered user");
  const etag = read.response.headers.get("ETag") ?? "";
  const renamed = await api.PATCH("/api/v1/users/me", {
    headers: bearer(access),
    params: { header: { "If-Match": etag } },
    body: { display_name: "Renamed" },
  });
  check(answer("updateMe", renamed, 200).display_name === "Renamed", "renamed");
  check(renamed.response.headers.get("ETag") !== etag, "a new ETag");
  const stale = problem(
    "updateMe",
    await api.PATCH("/api/v1/users/me", {
      headers: bearer(access),
      params: { header: { "If-Match": etag } },
      body: { display_name: "Lost" },
    }),
    412,
  );
  check(stale.status === 412 && stale.code === "precondition_failed" && stale.request_id !== "", "a 412 problem");

  // The refresh token authenticates POST /auth/refresh only: it goes in this call's Authorization header.
  [access, refresh] = tokenPair(
    answer("refreshTokens", await api.POST("/api/v1/auth/refresh", { headers: bearer(refresh) }), 200),
  );

  const sessions = answer("listMySessions", await api.GET("/api/v1/users/me/sessions", { headers: bearer(access) }), 200);
  check(sessions.items.length === 1 && sessions.items[0]?.current === true, "one session: this one");
  noContent("logout", await api.POST("/api/v1/auth/logout", { headers: bearer(access) }));
  const ended = problem("getMe", await api.GET("/api/v1/users/me", { headers: bearer(access) }), 401);
  check(ended.code === "invalid_token", `a logged-out token is invalid, not ${ended.code}`);
}

/** List users a page at a time, create one and delete it; then be refused a login and wait as told. */
async function adminJourney(baseUrl: string, adminEmail: string, adminPassword: string): Promise<void> {
  const api = createApiClient(baseUrl);
  const credentials = { body: { email: adminEmail, password: adminPassword } };
  const [access] = tokenPair(answer("login", await api.POST("/api/v1/auth/login", credentials), 200));
  const asAdmin = bearer(access);

  const first = answer(
    "listUsers",
    await api.GET("/api/v1/users", { headers: asAdmin, params: { query: { role: "user", limit: 1 } } }),
    200,
  );
  check(first.items.length === 1 && first.items[0]?.role === "user", "one plain user");
  if (first.next_cursor === null) throw new Error("listUsers: no next page");
  const second = answer(
    "listUsers",
    await api.GET("/api/v1/users", {
      headers: asAdmin,
      params: { query: { role: "user", limit: 1, cursor: first.next_cursor } },
    }),
    200,
  );
  check(second.items.length === 1 && second.items[0]?.id !== first.items[0]?.id, "the next page, another user");

  const body = { email: `created-${randomUUID().slice(0, 8)}@example.com`, password: PASSWORD, display_name: "Created" };
  const created = answer(
    "createUser",
    await api.POST("/api/v1/users", { headers: asAdmin, body: { ...body, role: "user" } }),
    201,
  );
  const byId = { headers: asAdmin, params: { path: { user_id: created.id } } };
  noContent("deleteUser", await api.DELETE("/api/v1/users/{user_id}", byId));
  const gone = problem("getUser", await api.GET("/api/v1/users/{user_id}", byId), 404);
  check(gone.code === "not_found", "a deleted user is not found");

  let refused = await api.POST("/api/v1/auth/login", credentials);
  for (let attempt = 1; attempt < LOGINS_BEFORE_429 && refused.response.status !== 429; attempt++) {
    refused = await api.POST("/api/v1/auth/login", credentials);
  }
  const limited = problem("login", refused, 429);
  check(limited.code === "too_many_requests", "refused for the rate limit");
  // The document declares Retry-After on a 429, as whole seconds: this type is its schema's.
  type RetryAfter = paths["/api/v1/auth/login"]["post"]["responses"][429]["headers"]["Retry-After"];
  const wait: RetryAfter = Number(refused.response.headers.get("Retry-After"));
  await sleep(wait * 1000); // rounded up: then it goes through
  answer("login", await api.POST("/api/v1/auth/login", credentials), 200);
}

async function main(argv: string[]): Promise<void> {
  const [baseUrl, adminEmail, adminPassword] = argv;
  if (baseUrl === undefined || adminEmail === undefined || adminPassword === undefined || argv.length !== 3) {
    throw new Error("usage: node dist/journey.js BASE_URL ADMIN_EMAIL ADMIN_PASSWORD");
  }
  await userJourney(baseUrl);
  await adminJourney(baseUrl, adminEmail, adminPassword);
  console.log("done");
}

await main(process.argv.slice(2));
