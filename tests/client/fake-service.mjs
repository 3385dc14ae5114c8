// The quota API and S3 as the client library sees them, in memory: a fetch for the API and an
// XMLHttpRequest for S3, with hooks to fail, hold or slow chosen requests. S3 checks what the
// real (and the local stack's) S3 checks of a presigned PUT: exactly the signed headers, and a
// body of exactly the signed length.

export const TOKEN = "id-token";

/**
 * @typedef {{method: string, path: string, body: any}} ApiCall
 * @typedef {{url: URL, headers: Record<string, string>, bytes: Uint8Array}} S3Put
 * @typedef {"ok" | "hang" | "network" | "lost" | number} S3Outcome "lost": stored, but the
 *   answer never arrives; a number: an error status
 */

export class FakeService {
  /** @param {{threshold?: number, partSize?: number, quota?: number}} [settings] */
  constructor({ threshold = 16, partSize = 10, quota = 1000 } = {}) {
    this.threshold = threshold;
    this.partSize = partSize;
    this.quota = quota;
    this.usedBytes = 0;
    /** @type {Map<string, any>} open uploads by id */
    this.uploads = new Map();
    /** @type {Map<string, Uint8Array>} */
    this.objects = new Map();
    /** @type {ApiCall[]} */
    this.calls = [];
    /** @type {S3Put[]} every PUT that reached S3, whatever its outcome */
    this.puts = [];
    /** @type {(put: S3Put) => S3Outcome} */
    this.s3Outcome = () => "ok";
    /** @type {(call: ApiCall) => number | "lost" | undefined} a status to answer instead (0: the
     * connection fails), or "lost": the request is carried out but its answer never arrives */
    this.apiOutcome = () => undefined;
    this.inFlight = 0;
    this.maxInFlight = 0;
    this.uploadsStarted = 0;
    this.fetch = this.fetch.bind(this);
    this.XMLHttpRequest = fakeXhr(this);
  }

  get reservedBytes() {
    let reserved = 0;
    for (const upload of this.uploads.values()) reserved += upload.size;
    return reserved;
  }

  /** @param {string} method @param {string} [prefix] */
  callsOf(method, prefix = "") {
    return this.calls.filter((call) => call.method === method && call.path.startsWith(prefix));
  }

  /** Part numbers of the PUTs that reached S3, in order. */
  partsPut() {
    return this.puts.map((put) => Number(put.url.searchParams.get("partNumber")));
  }

  /** @param {string | URL | Request} input @param {RequestInit} [init] */
  async fetch(input, init = {}) {
    const url = new URL(String(input), "https://api.test");
    const method = init.method ?? "GET";
    const call = {
      method,
      path: `${url.pathname}${url.search}`,
      body: init.body ? JSON.parse(String(init.body)) : undefined,
    };
    this.calls.push(call);
    const headers = /** @type {Record<string, string>} */ (init.headers);
    if (headers.Authorization !== `Bearer ${TOKEN}`) return json(401, { message: "Unauthorized" });
    if (init.body !== undefined && headers["Content-Type"] !== "application/json") return json(415, {});
    const refused = this.apiOutcome(call);
    if (refused === 0) throw new TypeError("Failed to fetch");
    if (typeof refused === "number")
      return json(refused, { error: "Injected", message: `injected ${refused}` });
    const answer = this.#route(method, url, call.body);
    if (refused === "lost") throw new TypeError("Failed to fetch");
    return answer;
  }

  /** @param {string} method @param {URL} url @param {any} body */
  #route(method, url, body) {
    const path = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const upload = this.uploads.get(path[1]);
    if (method === "POST" && path.join("/") === "uploads") return this.#grant(body);
    if (method === "POST" && path[0] === "uploads" && path[2] === "parts") {
      if (!upload?.multipart) return json(404, { message: "no such multipart upload in progress" });
      const parts = body.partNumbers.map((/** @type {number} */ number) => ({
        partNumber: number,
        url: `https://s3.test/${upload.key}?uploadId=${upload.uploadId}&partNumber=${number}`,
        headers: { "Content-Length": String(partBytes(upload, number)) },
      }));
      return json(200, { parts });
    }
    if (method === "GET" && path[0] === "uploads" && path[2] === "parts") {
      if (!upload?.multipart) return json(404, { message: "no such multipart upload in progress" });
      const parts = [...upload.parts].map(([partNumber, bytes]) => ({
        partNumber,
        size: bytes.length,
        etag: etagOf(bytes),
      }));
      return json(200, { parts });
    }
    if (method === "POST" && path[0] === "uploads" && path[2] === "complete") {
      if (!upload?.multipart) return json(404, { message: "no such multipart upload in progress" });
      const listed = body.parts.map((/** @type {{partNumber: number, etag: string}} */ part) => {
        const bytes = upload.parts.get(part.partNumber);
        if (!bytes || etagOf(bytes) !== part.etag) throw new Error(`part ${part.partNumber} not uploaded so`);
        return bytes;
      });
      this.#store(upload, concat(listed));
      return json(200, { key: upload.key, size: upload.size, etag: `multi-${listed.length}` });
    }
    if (method === "DELETE" && path[0] === "uploads") {
      if (!upload) return json(404, { message: "no such upload in progress" });
      this.uploads.delete(upload.uploadId);
      return new Response(null, { status: 204 });
    }
    if (method === "GET" && path[0] === "usage") {
      return json(200, {
        usedBytes: this.usedBytes,
        reservedBytes: this.reservedBytes,
        quotaBytes: this.quota,
      });
    }
    if (method === "GET" && url.pathname === "/files") {
      const keys = [...this.objects.keys()].sort();
      const limit = Number(url.searchParams.get("limit"));
      const after = url.searchParams.get("nextToken");
      const from = after ? keys.indexOf(after) + 1 : 0;
      const page = keys.slice(from, from + limit);
      const files = page.map((key) => ({
        key,
        filename: key.split("/").at(-1),
        size: this.objects.get(key)?.length,
      }));
      const more = from + limit < keys.length;
      return json(200, more ? { files, nextToken: page.at(-1) } : { files });
    }
    const object = this.objects.get(path[1]);
    if (path[0] === "files" && !object) return json(404, { message: "no such file" });
    if (method === "GET" && path[0] === "files") {
      const filename = path[1].split("/").at(-1);
      return json(200, {
        key: path[1],
        filename,
        size: object?.length,
        url: `https://s3.test/${path[1]}?get`,
      });
    }
    if (method === "DELETE" && path[0] === "files") {
      this.objects.delete(path[1]);
      return new Response(null, { status: 204 });
    }
    return json(404, { message: "Not Found" });
  }

  /** @param {any} request */
  #grant(request) {
    const available = this.quota - this.usedBytes - this.reservedBytes;
    if (request.size > available) {
      return json(507, {
        error: "Insufficient Storage",
        message: `This upload needs ${request.size} bytes; ${available} are free.`,
        usedBytes: this.usedBytes,
        reservedBytes: this.reservedBytes,
        quotaBytes: this.quota,
        requestedBytes: request.size,
        availableBytes: available,
      });
    }
    this.uploadsStarted += 1;
    const uploadId = `u${this.uploadsStarted}`;
    const key = `users/me/${uploadId}/${request.filename}`;
    const multipart = request.size > this.threshold;
    const partCount = multipart ? Math.max(1, Math.ceil(request.size / this.partSize)) : 1;
    const { size, contentType } = request;
    const upload = {
      uploadId,
      key,
      size,
      contentType,
      multipart,
      partSize: this.partSize,
      partCount,
      parts: new Map(),
    };
    this.uploads.set(uploadId, upload);
    const usage = { usedBytes: this.usedBytes, reservedBytes: this.reservedBytes };
    const common = { uploadId, key, expiresAt: new Date(Date.now() + 60_000).toISOString(), usage };
    if (multipart) return json(201, { ...common, method: "MULTIPART", partSize: this.partSize, partCount });
    const headers = {
      "Content-Type": request.contentType,
      "Content-Length": String(request.size),
      "If-None-Match": "*",
    };
    return json(201, { ...common, method: "PUT", url: `https://s3.test/${key}?single=${uploadId}`, headers });
  }

  /**
   * What S3 does with a PUT that arrived whole: the status it answers and the ETag.
   * @param {S3Put} put
   * @returns {{status: number, etag?: string}}
   */
  s3Put(put) {
    const { url, headers, bytes } = put;
    const partNumber = Number(url.searchParams.get("partNumber"));
    const upload = this.uploads.get(url.searchParams.get("uploadId") ?? url.searchParams.get("single") ?? "");
    const key = decodeURIComponent(url.pathname.slice(1));
    if (!partNumber) {
      if (this.objects.has(key)) return { status: 412 };
      const signed = { "Content-Type": upload?.contentType, "If-None-Match": "*" };
      if (!upload || bytes.length !== upload.size || !sameHeaders(headers, signed)) return { status: 403 };
      this.#store(upload, bytes);
      return { status: 200, etag: `"${etagOf(bytes)}"` };
    }
    if (!upload || bytes.length !== partBytes(upload, partNumber) || !sameHeaders(headers, {}))
      return { status: 403 };
    upload.parts.set(partNumber, bytes);
    return { status: 200, etag: `"${etagOf(bytes)}"` };
  }

  /** @param {any} upload @param {Uint8Array} bytes */
  #store(upload, bytes) {
    this.objects.set(upload.key, bytes);
    this.uploads.delete(upload.uploadId);
    this.usedBytes += bytes.length;
  }
}

/** Exactly the signed headers, Content-Length aside (XMLHttpRequest sets it from the body).
 * @param {Record<string, string>} sent @param {Record<string, string>} signed */
function sameHeaders(sent, signed) {
  const sorted = (/** @type {Record<string, string>} */ headers) =>
    JSON.stringify(Object.entries(headers).sort());
  return sorted(sent) === sorted(signed);
}

/** @param {any} upload @param {number} number */
function partBytes(upload, number) {
  return number < upload.partCount ? upload.partSize : upload.size - upload.partSize * (upload.partCount - 1);
}

/** @param {Uint8Array} bytes */
function etagOf(bytes) {
  let hash = 7;
  for (const byte of bytes) hash = (hash * 31 + byte) % 1_000_000_007;
  return `e${bytes.length}-${hash}`;
}

/** @param {Uint8Array[]} chunks */
function concat(chunks) {
  const whole = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.length;
  }
  return whole;
}

/** @param {number} status @param {any} body */
function json(status, body) {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

/** @param {FakeService} service */
function fakeXhr(service) {
  return class FakeXhr {
    upload = { onprogress: /** @type {((event: {loaded: number}) => void) | null} */ (null) };
    /** @type {(() => void) | null} */ onload = null;
    /** @type {(() => void) | null} */ onerror = null;
    /** @type {(() => void) | null} */ ontimeout = null;
    /** @type {(() => void) | null} */ onabort = null;
    status = 0;
    responseText = "";
    /** @type {Record<string, string>} */ headers = {};
    /** @type {Record<string, string>} */ responseHeaders = {};
    url = new URL("https://s3.test/");
    ended = false;

    /** @param {string} method @param {string} url */
    open(method, url) {
      if (method !== "PUT") throw new Error(`S3 is sent ${method}`);
      this.url = new URL(url);
    }

    /** @param {string} name @param {string} value */
    setRequestHeader(name, value) {
      // As browsers: Content-Length comes from the body.
      if (name.toLowerCase() === "content-length") throw new Error("Refused to set unsafe header");
      this.headers[name] = value;
    }

    /** @param {string} name */
    getResponseHeader(name) {
      return this.responseHeaders[name.toLowerCase()] ?? null;
    }

    abort() {
      if (this.#end()) setTimeout(() => this.onabort?.());
    }

    /** @param {Blob} body */
    async send(body) {
      service.inFlight += 1;
      service.maxInFlight = Math.max(service.maxInFlight, service.inFlight);
      const bytes = new Uint8Array(await body.arrayBuffer());
      /** @type {S3Put} */
      const put = { url: this.url, headers: this.headers, bytes };
      service.puts.push(put);
      const outcome = service.s3Outcome(put);
      await tick();
      if (this.ended || outcome === "hang") return;
      this.upload.onprogress?.({ loaded: Math.floor(bytes.length / 2) });
      await tick();
      if (this.ended || !this.#end()) return;
      if (outcome === "network") return this.onerror?.();
      const answer = outcome === "ok" || outcome === "lost" ? service.s3Put(put) : { status: outcome };
      if (outcome === "lost") return this.onerror?.();
      if (answer.status < 300) this.upload.onprogress?.({ loaded: bytes.length });
      this.status = answer.status;
      if (answer.etag) this.responseHeaders.etag = answer.etag;
      else if (answer.status >= 300) this.responseText = `<Error><Code>Code${answer.status}</Code></Error>`;
      this.onload?.();
    }

    #end() {
      if (this.ended) return false;
      this.ended = true;
      service.inFlight -= 1;
      return true;
    }
  };
}
