/**
 * The README's flows with the TypeScript client, against a served Atelier (tests/test_clients.py
 * runs it): generate, verify, a catalogue job whose webhooks a local receiver verifies, paged
 * results, errors as ApiError, and a 429 retried after its Retry-After. Needs ATELIER_URL and
 * ATELIER_ADMIN_KEY, and a server started with ATELIER_DEV_CALLBACKS=1 (the
 * receiver is on 127.0.0.1). Prints one JSON summary line; any failed check exits non-zero.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

import { ApiError, createAtelier, unwrap, verifyWebhook, WebhookVerificationError } from "../src/index.js";

const url = process.env.ATELIER_URL ?? "http://127.0.0.1:3000";
const adminKey = process.env.ATELIER_ADMIN_KEY ?? "";
const tag = process.env.TAG ?? String(Date.now());
const SMALL = { width: 256, height: 256, steps: 2 };
const PNG = [0x89, 0x50, 0x4e, 0x47];

const admin = createAtelier({ baseUrl: url, apiKey: adminKey });
const summary: Record<string, unknown> = {};

// The platform's key (the demo key's 60 requests a minute are too few for polling twice a second).
const platform = await admin.api.POST("/v1/admin/keys", {
  body: { tenant_id: "demo", scopes: ["generate", "verify"], name: `ts-${tag}`, requests_per_minute: 6000 },
});
assert.equal(platform.response.status, 201, JSON.stringify(platform.error));
const atelier = createAtelier({ baseUrl: url, apiKey: platform.data!.token });

// -- generate, generate/image, verify ------------------------------------------------------------

const generated = await atelier.api.POST("/v1/generate", {
  body: { twin_id: "demo-ava", prompt: "a linen dress", seed: 11, ...SMALL },
});
assert.equal(generated.response.status, 200, JSON.stringify(generated.error));
const first = generated.data!.images[0]!;
const decoded = Buffer.from(first.data_base64!, "base64");
assert.equal(createHash("sha256").update(decoded).digest("hex"), first.sha256);

const image = await atelier.api.POST("/v1/generate/image", {
  body: { twin_id: "demo-ava", prompt: "a linen dress", seed: 12, ...SMALL },
  parseAs: "arrayBuffer",
});
assert.equal(image.response.status, 200);
assert.equal(image.response.headers.get("content-type"), "image/png");
const bytes = new Uint8Array(image.data as unknown as ArrayBuffer);
assert.deepEqual([...bytes.slice(0, 4)], PNG);

const report = await atelier.verifyImage(bytes);
assert.equal(report.made_by_this_service, true);
assert.ok(report.generation_id);
summary.generate = { generation_id: generated.data!.generation_id, verified: report.generation_id };

const refused = await atelier.api.POST("/v1/generate", {
  body: { twin_id: "demo-ava", prompt: "a coat", ...SMALL, width: 100 },
});
try {
  unwrap(refused);
  assert.fail("a 422 must raise");
} catch (error) {
  assert.ok(error instanceof ApiError);
  assert.equal(error.status, 422);
  assert.equal(error.code, "invalid_field");
  summary.error = { status: error.status, code: error.code, field: error.field };
}

// -- a job with webhooks, verified by a local receiver --------------------------------------------

type Received = { headers: IncomingHttpHeaders; body: Buffer };
const received: Received[] = [];
const receiver = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", () => {
    received.push({ headers: request.headers, body: Buffer.concat(chunks) });
    response.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const port = (receiver.address() as AddressInfo).port;

const delivery = await admin.api.POST("/v1/admin/tenants/delivery", {
  body: { tenant_id: "demo", webhook_url: `http://127.0.0.1:${port}/hooks/atelier`, rotate_webhook_secret: true },
});
assert.equal(delivery.response.status, 200, JSON.stringify(delivery.error));
const secret = delivery.data!.webhook_secret!;
assert.ok(secret.startsWith("whsec_"));

const items = ["a red wool coat", "a white linen shirt", "a beige trench coat"].map((garment, index) => ({
  twin_id: "demo-ava", garment_description: garment, scene: "studio_white", sku: `TS-${tag}-${index}`, seed: index, ...SMALL,
}));
const body = { webhook_per_item: true, items };
const key = `ts-${tag}-batch-1`;
const accepted = await atelier.submitJob(body, { idempotencyKey: key });
const replayed = await atelier.submitJob(body, { idempotencyKey: key });
assert.equal(replayed.job_id, accepted.job_id, "the same Idempotency-Key and body is the same job");

const status = await atelier.waitForJob(accepted.job_id, { pollMs: 500, timeoutMs: 240_000 });
assert.equal(status.status, "completed");
assert.equal(status.items_done, 3);

const seen: number[] = [];
const pages: number[] = [];
for await (const item of atelier.results(accepted.job_id, { pageSize: 1 })) {
  seen.push(item.index);
  for (const result of item.images ?? []) {
    const data = await atelier.download(result);
    assert.deepEqual([...data.slice(0, 4)], PNG);
    pages.push(data.length);
  }
}
assert.deepEqual(seen, [0, 1, 2]);
assert.equal(pages.length, 3);

const deadline = Date.now() + 60_000;
const forJob = () => received.filter((r) => r.body.includes(accepted.job_id));
while (Date.now() < deadline && !forJob().some((r) => r.body.includes("job.completed"))) {
  await new Promise((resolve) => setTimeout(resolve, 200));
}
const events = forJob().map((r) => verifyWebhook(secret, r.body, r.headers));
assert.deepEqual(events.map((e) => e.type).sort(), ["job.completed", "job.item.completed", "job.item.completed",
                                                    "job.item.completed"]);
assert.equal(events.at(-1)!.type, "job.completed", "job.completed comes last");
assert.deepEqual(events.at(-1)!.data.items_done, 3);
const sample = forJob()[0]!;
const tampered = Buffer.concat([sample.body, Buffer.from(" ")]);
assert.throws(() => verifyWebhook(secret, tampered, sample.headers), WebhookVerificationError);
assert.throws(() => verifyWebhook(secret, sample.body, sample.headers, { nowS: Date.now() / 1000 + 3600 }),
              WebhookVerificationError);
receiver.close();
// The Standard Webhooks spec's own test vector.
const vector = { "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
                 "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" };
assert.deepEqual(verifyWebhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", '{"test": 2432232314}', vector,
                               { nowS: 1614265330 }), { test: 2432232314 });
summary.job = { job_id: accepted.job_id, items: seen.length, events: events.map((e) => e.type) };

// -- a 429 retried after its Retry-After ---------------------------------------------------------

const minted = await admin.api.POST("/v1/admin/keys", {
  body: { tenant_id: "demo", scopes: ["generate"], name: `ts-retry-${tag}`, max_concurrent_jobs: 1, requests_per_minute: 6000 },
});
assert.equal(minted.response.status, 201, JSON.stringify(minted.error));
const one = createAtelier({ baseUrl: url, apiKey: minted.data!.token });
// Four items: still queued or running when the next submission comes.
const blocker = await one.submitJob({
  items: [1, 2, 3, 4].map((seed) => ({ twin_id: "demo-ava", prompt: "a wool scarf", seed, ...SMALL })),
});
const waits: number[] = [];
const patient = createAtelier({
  baseUrl: url,
  apiKey: minted.data!.token,
  retry: {
    // Instead of waiting out the Retry-After, end what the 429 was about: the key's one job.
    sleep: async (seconds) => {
      waits.push(seconds);
      await one.api.POST("/v1/jobs/cancel", { params: { query: { job_id: blocker.job_id } } });
      await one.waitForJob(blocker.job_id, { pollMs: 500, timeoutMs: 120_000 });
    },
  },
});
const second = await patient.submitJob({ items: [{ twin_id: "demo-ava", prompt: "a silk scarf", ...SMALL }] });
assert.deepEqual(waits, [30], "one wait, of the 429's Retry-After");
await one.api.POST("/v1/jobs/cancel", { params: { query: { job_id: second.job_id } } });
summary.retry = { waits, job_id: second.job_id };

console.log(JSON.stringify(summary));
