/**
 * Atelier's official TypeScript client (Node 20+).
 *
 * `schema.d.ts` beside this file is generated from the API contract (clients/openapi.json) by
 * openapi-typescript (`make clients` regenerates it; never edit it by hand), and requests are
 * made by openapi-fetch over those types. This module is the thin hand-written layer:
 * `createAtelier` (a typed client whose requests retry 429 and 503 after their `Retry-After`),
 * catalogue jobs (submit, wait, page through results, download), `verifyImage`, and
 * `verifyWebhook` (Standard Webhooks, with node:crypto). It must never send the API key anywhere
 * but the gateway, never parse a webhook before verifying it, and never hold generated code.
 */

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import createClient, { type Client } from "openapi-fetch";
import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };
export type Schemas = components["schemas"];
export type JobSubmitBody = Schemas["JobSubmitBody"];
export type JobAccepted = Schemas["JobAccepted"];
export type JobSummary = Schemas["JobSummary"];
export type JobItemResult = Schemas["JobItemResult"];
export type JobImage = Schemas["JobImage"];
export type VerifyResponse = Schemas["VerifyResponse"];
export type ErrorDetail = Schemas["ErrorDetail"];

export const TERMINAL = ["completed", "failed", "canceled"] as const;

// -- errors ------------------------------------------------------------------------------------

/** An error answer: `status` (HTTP), `code` (stable, snake_case), `message`, `field` (or null). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
    readonly retryAfter: string | null = null,
  ) {
    super(`${status} ${code}: ${message}${field ? ` (field ${field})` : ""}`);
    this.name = "ApiError";
  }

  static from(response: Response, body: unknown): ApiError {
    const error = (body as { error?: Partial<ErrorDetail> } | undefined)?.error;
    const retryAfter = response.headers.get("retry-after");
    if (error && typeof error.code === "string") {
      return new ApiError(response.status, error.code, String(error.message ?? ""), error.field ?? null, retryAfter);
    }
    return new ApiError(response.status, "unexpected_answer", String(body ?? "").slice(0, 200), null, retryAfter);
  }
}

/** The data of an openapi-fetch result, or its error as an ApiError. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok && result.data !== undefined) {
    return result.data;
  }
  throw ApiError.from(result.response, result.error);
}

// -- retries -----------------------------------------------------------------------------------

export interface RetryOptions {
  /** How many times a 429 or 503 is sent again (default 3). */
  maxRetries?: number;
  /** A longer Retry-After is returned to the caller unretried (default 60 s). */
  maxWaitS?: number;
  /** Back-off when Retry-After is absent: backoffS * 2^n (default 1 s). */
  backoffS?: number;
  /** How to wait (default: a timer); tests and schedulers may replace it. */
  sleep?: (seconds: number) => Promise<void>;
}

const RETRY_STATUSES = new Set([429, 503]);

/** Seconds a `Retry-After` value (delta-seconds or an HTTP date) asks to wait, or undefined. */
export function retryAfterSeconds(value: string | null, nowMs: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  return Number.isNaN(when) ? undefined : Math.max(0, (when - nowMs) / 1000);
}

/** A fetch that sends a request again after each 429/503 the options allow, waiting its Retry-After.
 * Never retries another status or a network error (resend those yourself, with the Idempotency-Key). */
export function retryingFetch(
  inner: (input: Request) => Promise<Response> = (input) => fetch(input),
  options: RetryOptions = {},
): (input: Request) => Promise<Response> {
  const maxRetries = options.maxRetries ?? 3;
  const maxWaitS = options.maxWaitS ?? 60;
  const backoffS = options.backoffS ?? 1;
  const sleep = options.sleep ?? ((s: number) => new Promise<void>((resolve) => setTimeout(resolve, s * 1000)));
  return async (request: Request) => {
    for (let retries = 0; ; retries++) {
      const response = await inner(request.clone());
      if (!RETRY_STATUSES.has(response.status) || retries >= maxRetries) return response;
      const wait = retryAfterSeconds(response.headers.get("retry-after")) ?? backoffS * 2 ** retries;
      if (wait > maxWaitS) return response;
      await response.body?.cancel();
      await sleep(wait);
    }
  };
}

// -- the client --------------------------------------------------------------------------------

export interface AtelierOptions {
  /** e.g. "http://127.0.0.1:3000" */
  baseUrl: string;
  apiKey: string;
  retry?: RetryOptions;
  /** The fetch under the retries (default: the global fetch). */
  fetch?: (input: Request) => Promise<Response>;
}

export interface WaitOptions {
  timeoutMs?: number;
  pollMs?: number;
  onStatus?: (status: JobSummary) => void;
}

export class JobTimeout extends Error {
  constructor(readonly jobId: string, readonly status: JobSummary | undefined) {
    super(`job ${jobId} is still ${status?.status ?? "unknown"}`);
    this.name = "JobTimeout";
  }
}

export class DownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DownloadError";
  }
}

export class Atelier {
  /** The typed client of every operation: `atelier.api.POST("/v1/generate", { body })`. */
  readonly api: Client<paths>;
  private readonly fetch: (input: Request) => Promise<Response>;

  constructor(private readonly options: AtelierOptions) {
    this.fetch = retryingFetch(options.fetch, options.retry);
    this.api = createClient<paths>({
      baseUrl: options.baseUrl,
      fetch: this.fetch,
      headers: { Authorization: `Bearer ${options.apiKey}` },
    });
  }

  /** Queue a job (202). Send an idempotencyKey derived from your own batch id: a resend with
   * the same key and body returns the same job instead of queueing it twice. */
  async submitJob(body: JobSubmitBody, options: { idempotencyKey?: string } = {}): Promise<JobAccepted> {
    const headers = options.idempotencyKey ? { "Idempotency-Key": options.idempotencyKey } : {};
    return unwrap(await this.api.POST("/v1/jobs/submit", { body, headers }));
  }

  /** Poll the status until the job ends; `completed` means at least one item is done. */
  async waitForJob(jobId: string, options: WaitOptions = {}): Promise<JobSummary> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    for (;;) {
      const status = unwrap(await this.api.GET("/v1/jobs/status", { params: { query: { job_id: jobId } } }));
      options.onStatus?.(status);
      if ((TERMINAL as readonly string[]).includes(status.status)) return status;
      if (Date.now() >= deadline) throw new JobTimeout(jobId, status);
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 2000));
    }
  }

  /** Every item of the job in index order, page after page (following `next_offset`). */
  async *results(jobId: string, options: { pageSize?: number } = {}): AsyncGenerator<JobItemResult> {
    let offset: number | null | undefined = 0;
    while (offset !== null && offset !== undefined) {
      const query: { job_id: string; offset: number; limit: number } = {
        job_id: jobId, offset, limit: options.pageSize ?? 100,
      };
      const page = unwrap(await this.api.GET("/v1/jobs/get", { params: { query } }));
      yield* page.items;
      offset = page.next_offset;
    }
  }

  /** One image's bytes, checked against its sha256: an inline image through the gateway (with
   * the key), an S3 image from its presigned URL (without it). */
  async download(image: JobImage): Promise<Uint8Array> {
    if (!image.url) throw new DownloadError(`image ${image.n} has no URL`);
    let response: Response;
    if (image.url.startsWith("/")) {
      response = await this.fetch(new Request(new URL(image.url, this.options.baseUrl), {
        headers: { Authorization: `Bearer ${this.options.apiKey}` },
      }));
      if (!response.ok) throw ApiError.from(response, await response.json().catch(() => undefined));
    } else {
      response = await fetch(image.url, { redirect: "error" });
      if (!response.ok) throw new DownloadError(`image ${image.n}: ${response.status} from its presigned URL`);
    }
    const data = new Uint8Array(await response.arrayBuffer());
    if (createHash("sha256").update(data).digest("hex") !== image.sha256) {
      throw new DownloadError(`image ${image.n}: its bytes do not match its sha256`);
    }
    return data;
  }

  /** Submit, wait, then download every image. */
  async runJob(body: JobSubmitBody, options: WaitOptions & { idempotencyKey?: string } = {}): Promise<{
    status: JobSummary;
    images: { item: JobItemResult; image: JobImage; data: Uint8Array }[];
  }> {
    const accepted = await this.submitJob(body, options);
    const status = await this.waitForJob(accepted.job_id, options);
    const images = [];
    for await (const item of this.results(accepted.job_id)) {
      for (const image of item.images ?? []) images.push({ item, image, data: await this.download(image) });
    }
    return { status, images };
  }

  /** Whether an image carries Atelier's watermark and credential, and whose it is. */
  async verifyImage(image: Uint8Array, mediaType = "image/png"): Promise<VerifyResponse> {
    const form = new FormData();
    form.append("image", new Blob([new Uint8Array(image)], { type: mediaType }), "image");
    // The types say `string` for binary; the body is the form, sent as it is.
    const body = form as unknown as { image: string };
    return unwrap(await this.api.POST("/v1/verify", { body, bodySerializer: (b: unknown) => b }));
  }
}

export function createAtelier(options: AtelierOptions): Atelier {
  return new Atelier(options);
}

// -- webhooks ----------------------------------------------------------------------------------

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

export interface WebhookEvent {
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

type HeaderBag = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string {
  if (headers instanceof Headers) return headers.get(name) ?? "";
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(" ") : value ?? "";
  }
  return "";
}

/** The `webhook-signature` value Atelier sends for this message (for tests of a receiver). */
export function signWebhook(secret: string, msgId: string, timestamp: number, body: Uint8Array | string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  if (key.length === 0) throw new WebhookVerificationError("the webhook secret is empty or not base64");
  const mac = createHmac("sha256", key).update(`${msgId}.${timestamp}.`).update(body).digest("base64");
  return `v1,${mac}`;
}

/** The event of an authentic, fresh webhook (Standard Webhooks), or WebhookVerificationError.
 * `body` is the raw request body exactly as received, before any JSON parsing. */
export function verifyWebhook(
  secret: string,
  body: Uint8Array | string,
  headers: HeaderBag,
  options: { toleranceS?: number; nowS?: number } = {},
): WebhookEvent {
  const msgId = header(headers, "webhook-id");
  const stamp = header(headers, "webhook-timestamp").trim();
  const signatures = header(headers, "webhook-signature");
  if (!msgId || !stamp || !signatures) {
    throw new WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature");
  }
  if (!/^[0-9]{1,12}$/.test(stamp)) throw new WebhookVerificationError("webhook-timestamp is not a number of seconds");
  const now = options.nowS ?? Date.now() / 1000;
  if (Math.abs(now - Number(stamp)) > (options.toleranceS ?? 300)) {
    throw new WebhookVerificationError("webhook-timestamp is too old or too new");
  }
  const expected = Buffer.from(signWebhook(secret, msgId, Number(stamp), body));
  for (const candidate of signatures.split(/\s+/)) {
    const given = Buffer.from(candidate);
    if (candidate.startsWith("v1,") && given.length === expected.length && timingSafeEqual(given, expected)) {
      const text = typeof body === "string" ? body : Buffer.from(body).toString("utf8");
      return JSON.parse(text) as WebhookEvent;
    }
  }
  throw new WebhookVerificationError("no signature matches");
}
