/**
 * A typed client for the Flask API starter: openapi-fetch on the types in schema.d.ts, which
 * openapi-typescript writes from clients/openapi.json (`make clients` regenerates both).
 *
 *     const api = createApiClient("http://127.0.0.1:8000");
 *     const { data, error } = await api.GET("/api/v1/users/me", { headers: bearer(accessToken) });
 *
 * `data` is the typed answer, or `error` the typed Problem (application/problem+json).
 */
import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";
export type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
export type User = Schemas["User"];
export type TokenPair = Schemas["Token"];

/** A client for the server at baseUrl, its origin: the paths carry /api/v1. */
export function createApiClient(baseUrl: string): Client<paths> {
  return createClient<paths>({ baseUrl });
}

/** The Authorization header for a token: the access token, or the refresh token on POST /api/v1/auth/refresh. */
export function bearer(token: string): { Authorization: string } {
  return { Authorization: `Bearer ${token}` };
}
