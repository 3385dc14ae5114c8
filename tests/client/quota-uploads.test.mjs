// The client library against an in-memory API and S3 (fake-service.mjs): `node --test tests/client`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  ApiError,
  QuotaExceededError,
  QuotaUploads,
  TransferError,
  saveDownload,
} from "../../web/quota-uploads.js";
import { FakeService, TOKEN } from "./fake-service.mjs";

/** A file of `size` bytes, each its index mod 251, so a misplaced slice shows. */
function fileOf(size, name = "data.bin", type = "application/octet-stream") {
  const bytes = Uint8Array.from({ length: size }, (_, index) => index % 251);
  return new File([bytes], name, { type, lastModified: 1_700_000_000_000 });
}

/** A storage as localStorage is: strings by key, kept across clients (a reload). */
function storage() {
  const items = new Map();
  return { getItem: (key) => items.get(key) ?? null, setItem: (key, value) => void items.set(key, value) };
}

function client(service, options = {}) {
  return new QuotaUploads({
    apiUrl: "https://api.test/",
    getIdToken: async () => TOKEN,
    fetch: service.fetch,
    XMLHttpRequest: service.XMLHttpRequest,
    storage: null,
    retryDelayMs: 1,
    ...options,
  });
}

async function stored(service, key) {
  return new Uint8Array(await new Blob([service.objects.get(key)]).arrayBuffer());
}

describe("upload", () => {
  test("a small file is one PUT with exactly the grant's headers, and its progress reaches the size", async () => {
    const service = new FakeService();
    const progress = [];
    const starts = [];
    const file = fileOf(12, "notes.txt", "text/plain");

    const result = await client(service).upload(file, {
      onProgress: (event) => progress.push(event),
      onStart: (start) => starts.push(start),
    });

    assert.deepEqual(service.callsOf("POST", "/uploads")[0].body, {
      filename: "notes.txt",
      size: 12,
      contentType: "text/plain",
    });
    assert.deepEqual(result, { uploadId: "u1", key: "users/me/u1/notes.txt", size: 12, method: "PUT" });
    assert.deepEqual(service.puts[0].headers, { "Content-Type": "text/plain", "If-None-Match": "*" });
    assert.deepEqual(await stored(service, result.key), new Uint8Array(await file.arrayBuffer()));
    assert.deepEqual(starts, [
      {
        uploadId: "u1",
        key: result.key,
        method: "PUT",
        resumedBytes: 0,
        usage: { usedBytes: 0, reservedBytes: 12 },
      },
    ]);
    assert.deepEqual(progress.at(-1), { loaded: 12, total: 12 });
    assert.ok(
      progress.some(({ loaded }) => loaded > 0 && loaded < 12),
      "progress during the PUT",
    );
  });

  test("a large file goes in parts, at most `concurrency` at once, each its own slice", async () => {
    const service = new FakeService({ threshold: 16, partSize: 10 });
    const progress = [];
    const file = fileOf(95);

    const result = await client(service).upload(file, {
      concurrency: 3,
      onProgress: (event) => progress.push(event.loaded),
    });

    assert.equal(result.method, "MULTIPART");
    assert.deepEqual(await stored(service, result.key), new Uint8Array(await file.arrayBuffer()));
    assert.equal(service.maxInFlight, 3);
    assert.deepEqual(
      service.partsPut().sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    for (const put of service.puts) assert.deepEqual(put.headers, {}, "a part carries only Content-Length");
    // Signed a batch ahead (2 × concurrency), not one request per part.
    assert.equal(service.callsOf("POST", "/uploads/u1/parts").length, 2);
    assert.equal(progress.at(-1), 95);
    assert.ok(progress.length > 10);
  });

  test("a part that fails twice is sent again after a backoff and the upload completes", async () => {
    const service = new FakeService();
    let failures = 0;
    service.s3Outcome = (put) =>
      put.url.searchParams.get("partNumber") === "2" && failures++ < 2
        ? failures === 1
          ? 503
          : "network"
        : "ok";
    const file = fileOf(30);

    const result = await client(service).upload(file);

    assert.deepEqual(
      service.partsPut().filter((n) => n === 2),
      [2, 2, 2],
    );
    assert.deepEqual(await stored(service, result.key), new Uint8Array(await file.arrayBuffer()));
  });

  test("a part refused with 403 (an expired URL) is signed again before it is retried", async () => {
    const service = new FakeService();
    let refused = false;
    service.s3Outcome = (put) =>
      put.url.searchParams.get("partNumber") === "3" && !refused ? ((refused = true), 403) : "ok";

    await client(service).upload(fileOf(30), { concurrency: 1 });

    const signed = service.callsOf("POST", "/uploads/u1/parts").map((call) => call.body.partNumbers);
    assert.deepEqual(signed, [[1, 2], [3], [3]]);
    assert.deepEqual(service.partsPut(), [1, 2, 3, 3]);
  });

  test("a part S3 keeps refusing fails the upload with S3's code, after the retries, and stays resumable", async () => {
    const service = new FakeService();
    service.s3Outcome = (put) => (put.url.searchParams.get("partNumber") === "2" ? 500 : "ok");
    const remembered = storage();

    await assert.rejects(client(service, { storage: remembered, retries: 2 }).upload(fileOf(30)), (error) => {
      assert.ok(error instanceof TransferError);
      assert.equal(error.status, 500);
      assert.equal(error.message, "S3 answered 500 Code500");
      return true;
    });
    assert.equal(service.partsPut().filter((n) => n === 2).length, 3);
    assert.equal(service.callsOf("DELETE").length, 0, "the reservation is kept for a resume");
    assert.equal(Object.keys(JSON.parse(remembered.getItem("quota-uploads:resume"))).length, 1);
  });

  test("parts the API will not sign fail the upload with its answer", async () => {
    const service = new FakeService();
    service.apiOutcome = (call) => (call.path.endsWith("/parts") ? 404 : undefined);

    await assert.rejects(client(service).upload(fileOf(30), { concurrency: 1 }), {
      name: "ApiError",
      status: 404,
    });
    assert.equal(service.puts.length, 0);
  });

  test("a 400 from S3 is not retried", async () => {
    const service = new FakeService();
    service.s3Outcome = () => 400;

    await assert.rejects(client(service).upload(fileOf(5)), TransferError);
    assert.equal(service.puts.length, 1);
    assert.equal(service.reservedBytes, 0, "a failed single PUT gives its reservation back");
  });

  test("a single PUT whose answer was lost succeeds when its retry is refused by If-None-Match", async () => {
    const service = new FakeService();
    let first = true;
    service.s3Outcome = () => (first ? ((first = false), "lost") : "ok");
    const file = fileOf(7);

    const result = await client(service).upload(file);

    assert.equal(service.puts.length, 2);
    assert.deepEqual(await stored(service, result.key), new Uint8Array(await file.arrayBuffer()));
  });

  test("a file over the quota raises QuotaExceededError with the 507's numbers", async () => {
    const service = new FakeService({ quota: 100 });
    await client(service).upload(fileOf(60));
    const puts = service.puts.length;

    await assert.rejects(client(service).upload(fileOf(50, "big.bin")), (error) => {
      assert.ok(error instanceof QuotaExceededError);
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 507);
      assert.deepEqual(
        [error.usedBytes, error.reservedBytes, error.quotaBytes, error.requestedBytes, error.availableBytes],
        [60, 0, 100, 50, 40],
      );
      assert.equal(error.message, "This upload needs 50 bytes; 40 are free.");
      return true;
    });
    assert.equal(service.puts.length, puts);
  });

  test("a Blob without a name needs a filename", async () => {
    const service = new FakeService();
    const blob = new Blob(["abc"]);
    await assert.rejects(client(service).upload(blob), TypeError);
    const result = await client(service).upload(blob, {
      filename: "from-camera.jpg",
      contentType: "image/jpeg",
    });
    assert.equal(result.key, "users/me/u1/from-camera.jpg");
    assert.deepEqual(service.puts[0].headers, { "Content-Type": "image/jpeg", "If-None-Match": "*" });
  });

  test("concurrency must be a positive integer, checked before anything is reserved", async () => {
    const service = new FakeService();
    await assert.rejects(client(service).upload(fileOf(30), { concurrency: 0 }), RangeError);
    assert.equal(service.calls.length, 0);
  });
});

describe("abort", () => {
  test("aborting a multipart upload stops its parts and cancels it at once", async () => {
    const service = new FakeService();
    service.s3Outcome = (put) => (put.url.searchParams.get("partNumber") === "1" ? "ok" : "hang");
    const remembered = storage();
    const aborting = new AbortController();
    const uploading = client(service, { storage: remembered }).upload(fileOf(40), {
      signal: aborting.signal,
      onProgress: ({ loaded }) => loaded >= 10 && aborting.abort(),
    });

    await assert.rejects(uploading, { name: "AbortError" });
    assert.equal(service.inFlight, 0, "no PUT left running");
    assert.deepEqual(
      service.callsOf("DELETE").map((call) => call.path),
      ["/uploads/u1"],
    );
    assert.equal(service.reservedBytes, 0);
    assert.equal(service.callsOf("POST", "/uploads/u1/complete").length, 0);
    assert.equal(remembered.getItem("quota-uploads:resume"), "{}", "nothing left to resume");
  });

  test("aborting a single PUT aborts the request and releases the reservation", async () => {
    const service = new FakeService();
    service.s3Outcome = () => "hang";
    const aborting = new AbortController();
    const uploading = client(service).upload(fileOf(10), {
      signal: aborting.signal,
      onStart: () => setTimeout(() => aborting.abort(), 5),
    });

    await assert.rejects(uploading, { name: "AbortError" });
    assert.equal(service.inFlight, 0);
    assert.deepEqual(
      service.callsOf("DELETE").map((call) => call.path),
      ["/uploads/u1"],
    );
    assert.equal(service.reservedBytes, 0);
  });

  test("an abort while the grant is on its way cancels the grant once it arrives", async () => {
    const service = new FakeService();
    const aborting = new AbortController();
    service.apiOutcome = (call) => {
      if (call.method === "POST") aborting.abort();
      return undefined;
    };

    await assert.rejects(client(service).upload(fileOf(10), { signal: aborting.signal }), {
      name: "AbortError",
    });
    assert.equal(service.puts.length, 0);
    assert.equal(service.reservedBytes, 0);
  });

  test("an upload aborted before it starts asks the API nothing", async () => {
    const service = new FakeService();
    await assert.rejects(client(service).upload(fileOf(10), { signal: AbortSignal.abort() }), {
      name: "AbortError",
    });
    assert.equal(service.calls.length, 0);
  });
});

describe("resume", () => {
  test("an interrupted multipart upload resumes in a new client, sending only the missing parts", async () => {
    const service = new FakeService();
    const remembered = storage();
    const file = fileOf(50);
    service.s3Outcome = (put) => (put.url.searchParams.get("partNumber") === "4" ? 500 : "ok");
    await assert.rejects(
      client(service, { storage: remembered, retries: 0 }).upload(file, { concurrency: 1 }),
    );
    assert.deepEqual(service.partsPut(), [1, 2, 3, 4]);

    // The page reloaded: the same file, picked again, with the storage the first one left.
    service.s3Outcome = () => "ok";
    service.puts.length = 0;
    const starts = [];
    const progress = [];
    const result = await client(service, { storage: remembered }).upload(fileOf(50), {
      onStart: (start) => starts.push(start),
      onProgress: ({ loaded }) => progress.push(loaded),
    });

    assert.deepEqual(service.partsPut().sort(), [4, 5]);
    assert.equal(service.uploadsStarted, 1, "no second grant");
    assert.deepEqual(starts, [{ uploadId: "u1", key: result.key, method: "MULTIPART", resumedBytes: 30 }]);
    assert.equal(progress[0], 30);
    assert.deepEqual(await stored(service, result.key), new Uint8Array(await file.arrayBuffer()));
    assert.equal(remembered.getItem("quota-uploads:resume"), "{}");
  });

  test("a part S3 holds only in part is sent again", async () => {
    const service = new FakeService();
    const remembered = storage();
    service.s3Outcome = () => 500;
    await assert.rejects(
      client(service, { storage: remembered, retries: 0 }).upload(fileOf(30), { concurrency: 1 }),
    );
    service.uploads.get("u1").parts.set(1, new Uint8Array(10));
    service.uploads.get("u1").parts.set(2, new Uint8Array(4)); // cut short
    service.s3Outcome = () => "ok";
    service.puts.length = 0;

    await client(service, { storage: remembered }).upload(fileOf(30));

    assert.deepEqual(service.partsPut().sort(), [2, 3]);
  });

  test("an upload that completed with its answer lost is not sent again", async () => {
    const service = new FakeService();
    const remembered = storage();
    service.apiOutcome = (call) => (call.path.endsWith("/complete") ? "lost" : undefined);
    const file = fileOf(30);
    await assert.rejects(client(service, { storage: remembered }).upload(file), TypeError);
    service.apiOutcome = () => undefined;
    service.puts.length = 0;

    const result = await client(service, { storage: remembered }).upload(file);

    assert.deepEqual(result, { uploadId: "u1", key: "users/me/u1/data.bin", size: 30, method: "MULTIPART" });
    assert.equal(service.puts.length, 0);
    assert.equal(service.uploadsStarted, 1);
    assert.equal(remembered.getItem("quota-uploads:resume"), "{}");
  });

  test("an abort while a resume lists the parts cancels the upload", async () => {
    const service = new FakeService();
    const remembered = storage();
    service.s3Outcome = () => 500;
    await assert.rejects(client(service, { storage: remembered, retries: 0 }).upload(fileOf(30)));
    const aborting = new AbortController();
    service.apiOutcome = (call) => void (call.method === "GET" && aborting.abort());
    service.puts.length = 0;

    const resuming = client(service, { storage: remembered }).upload(fileOf(30), { signal: aborting.signal });

    await assert.rejects(resuming, { name: "AbortError" });
    assert.equal(service.puts.length, 0);
    assert.equal(service.reservedBytes, 0);
    assert.equal(remembered.getItem("quota-uploads:resume"), "{}");
  });

  test("an upload cancelled meanwhile starts afresh", async () => {
    const service = new FakeService();
    const remembered = storage();
    service.s3Outcome = () => 500;
    await assert.rejects(client(service, { storage: remembered, retries: 0 }).upload(fileOf(30)));
    await client(service).cancelUpload("u1");
    service.s3Outcome = () => "ok";

    const result = await client(service, { storage: remembered }).upload(fileOf(30));

    assert.equal(result.uploadId, "u2");
  });

  test("another file of the same name is not taken for the interrupted one", async () => {
    const service = new FakeService();
    const remembered = storage();
    service.s3Outcome = () => 500;
    await assert.rejects(client(service, { storage: remembered, retries: 0 }).upload(fileOf(30)));
    service.s3Outcome = () => "ok";

    const result = await client(service, { storage: remembered }).upload(fileOf(31));

    assert.equal(result.uploadId, "u2");
    assert.equal(service.callsOf("GET", "/uploads").length, 0);
  });

  test("two uploads remembered at once both stay remembered", async () => {
    const service = new FakeService();
    const remembered = storage();
    service.s3Outcome = () => 500;
    const failing = client(service, { storage: remembered, retries: 0 });
    await Promise.allSettled([failing.upload(fileOf(30, "a.bin")), failing.upload(fileOf(30, "b.bin"))]);

    assert.equal(Object.keys(JSON.parse(remembered.getItem("quota-uploads:resume"))).length, 2);
  });
});

describe("the API's other routes", () => {
  test("list pages with nextToken; usage, download and remove name the key as one path segment", async () => {
    const service = new FakeService();
    const api = client(service);
    for (const name of ["a.txt", "b.txt", "c d.txt"]) await api.upload(fileOf(3, name));

    const first = await api.list({ limit: 2 });
    const second = await api.list({ limit: 2, nextToken: first.nextToken });
    assert.deepEqual(
      [...first.files, ...second.files].map((file) => file.filename),
      ["a.txt", "b.txt", "c d.txt"],
    );
    assert.equal(second.nextToken, null);

    const key = "users/me/u3/c d.txt";
    const download = await api.download(key);
    assert.equal(download.filename, "c d.txt");
    assert.equal(service.calls.at(-1).path, "/files/users%2Fme%2Fu3%2Fc%20d.txt");
    await api.remove(key);
    assert.equal(service.calls.at(-1).path, "/files/users%2Fme%2Fu3%2Fc%20d.txt");
    await assert.rejects(api.remove(key), { name: "ApiError", status: 404, message: "no such file" });
    assert.equal((await api.usage()).usedBytes, 9);
  });

  test("a read is retried when the API fails; a grant never is", async () => {
    const service = new FakeService();
    let failures = 0;
    service.apiOutcome = (call) => (failures++ < 2 ? (call.method === "GET" ? 0 : 503) : undefined);
    assert.equal((await client(service).usage()).quotaBytes, 1000);

    failures = 0;
    service.apiOutcome = (call) => (call.method === "POST" && failures++ < 1 ? 503 : undefined);
    await assert.rejects(client(service).upload(fileOf(5)), { name: "ApiError", status: 503 });
    assert.equal(service.callsOf("POST", "/uploads").length, 1);
  });

  test("the ID token is asked for before every request", async () => {
    const service = new FakeService();
    let asked = 0;
    const api = client(service, {
      getIdToken: () => {
        asked += 1;
        return TOKEN;
      },
    });
    await api.usage();
    await api.usage();
    assert.equal(asked, 2);
  });

  test("saveDownload clicks a link to the URL, named for the file", () => {
    const clicked = [];
    const body = { append: (link) => (link.parent = body) };
    const document = {
      body,
      createElement: () => ({
        click() {
          clicked.push({ href: this.href, download: this.download, inDocument: this.parent === body });
        },
        remove() {
          this.parent = null;
        },
      }),
    };
    saveDownload(
      { key: "k", filename: "résumé.pdf", size: 1, url: "https://s3.test/k", expiresAt: "" },
      document,
    );
    assert.deepEqual(clicked, [{ href: "https://s3.test/k", download: "résumé.pdf", inDocument: true }]);
  });
});
