// quota-uploads' client: files go straight to S3 through the API's presigned URLs, inside the
// user's quota. One ES module with JSDoc types and no dependencies, usable as it is (no build
// step) in browsers and React Native: it needs only fetch (the API), XMLHttpRequest (S3, for
// upload progress, which fetch does not report) and Blob.slice (parts).
//
//   const client = new QuotaUploads({ apiUrl, getIdToken: () => idToken() });
//   const { key } = await client.upload(file, { onProgress, signal });

/**
 * @typedef {object} Usage
 * @property {number} usedBytes
 * @property {number} reservedBytes
 * @property {number} quotaBytes
 * @property {number} availableBytes
 * @property {number} objectCount
 * @property {number} percentUsed
 */
/**
 * @typedef {object} UploadRequest What `POST /uploads` takes.
 * @property {string} filename
 * @property {number} size
 * @property {string} contentType
 * @property {string} [checksumSha256] base64 SHA-256 of the file: S3 then checks the bytes
 * @property {boolean} [multipart] ask for (true) or against (false) multipart; else the size decides
 * @property {number} [partSize] for a client that chunks the file itself
 */
/**
 * @typedef {object} SinglePutGrant
 * @property {string} uploadId
 * @property {string} key
 * @property {"PUT"} method
 * @property {string} url
 * @property {Record<string, string>} headers the PUT must carry exactly these
 * @property {string} expiresAt
 * @property {Usage} usage
 */
/**
 * @typedef {object} MultipartGrant
 * @property {string} uploadId
 * @property {string} key
 * @property {"MULTIPART"} method
 * @property {number} partSize every part but the last has exactly this size
 * @property {number} partCount
 * @property {string} expiresAt when the reservation ends unless completed
 * @property {Usage} usage
 */
/** @typedef {SinglePutGrant | MultipartGrant} Grant */
/**
 * @typedef {object} SignedPart
 * @property {number} partNumber
 * @property {string} url
 * @property {Record<string, string>} headers
 */
/**
 * @typedef {object} UploadedPart
 * @property {number} partNumber
 * @property {number} size
 * @property {string} etag
 */
/**
 * @typedef {object} CompletedUpload
 * @property {string} key
 * @property {number} size
 * @property {string} etag
 */
/**
 * @typedef {object} FileItem
 * @property {string} key
 * @property {string} filename
 * @property {number} size
 * @property {string} uploadedAt
 * @property {string} etag
 */
/**
 * @typedef {object} FilePage
 * @property {FileItem[]} files
 * @property {string | null} nextToken pass it to list() for the next page; null on the last
 */
/**
 * @typedef {object} FileDownload
 * @property {string} key
 * @property {string} filename
 * @property {number} size
 * @property {string} url GET it before expiresAt (5 minutes); the answer saves as filename
 * @property {string} expiresAt
 */
/**
 * @typedef {object} Progress
 * @property {number} loaded bytes sent; steps back when a failed part is sent again
 * @property {number} total
 */
/**
 * @typedef {object} UploadStart
 * @property {string} uploadId cancelUpload(uploadId) gives up a failed multipart upload
 * @property {string} key
 * @property {"PUT" | "MULTIPART"} method
 * @property {number} resumedBytes bytes an earlier, interrupted attempt already sent
 * @property {Usage} [usage] the user's usage with this upload's bytes reserved, as the grant
 *   answered it (a resumed upload was granted before)
 */
/**
 * @typedef {object} UploadOptions
 * @property {(progress: Progress) => void} [onProgress]
 * @property {(start: UploadStart) => void} [onStart] once the upload has its id
 * @property {AbortSignal} [signal] aborting it cancels the upload and releases its reservation
 * @property {number} [concurrency] parts in flight at once (default 4)
 * @property {string} [filename] defaults to the file's name (React Native blobs have none)
 * @property {string} [contentType] defaults to the file's type, else application/octet-stream
 * @property {string} [resumeKey] names the file across reloads; defaults to its filename,
 *   size, lastModified and type
 */
/**
 * @typedef {object} UploadResult
 * @property {string} uploadId
 * @property {string} key
 * @property {number} size
 * @property {"PUT" | "MULTIPART"} method
 */
/**
 * Where interrupted multipart uploads are remembered: localStorage, React Native's
 * AsyncStorage, or anything with these two methods, synchronous or not.
 * @typedef {object} ResumeStorage
 * @property {(key: string) => string | null | Promise<string | null>} getItem
 * @property {(key: string, value: string) => void | Promise<void>} setItem
 */
/**
 * @typedef {object} ClientOptions
 * @property {string} apiUrl the API's base URL ("" for the page's own origin)
 * @property {() => string | Promise<string>} getIdToken the signed-in user's current Cognito
 *   ID token, from whatever SDK signs them in; asked before every request
 * @property {ResumeStorage | null} [storage] defaults to localStorage where there is one;
 *   null (or no storage at all) remembers uploads for this client's lifetime only
 * @property {number} [retries] retries of a failed part or read, with backoff (default 4)
 * @property {number} [retryDelayMs] the first retry's largest delay (default 500 ms)
 * @property {typeof fetch} [fetch] defaults to the global fetch
 * @property {typeof XMLHttpRequest} [XMLHttpRequest] defaults to the global XMLHttpRequest
 */
/**
 * What is remembered of a multipart upload until it completes or is cancelled.
 * @typedef {object} ResumeRecord
 * @property {string} uploadId
 * @property {string} key
 * @property {number} size
 * @property {number} partSize
 * @property {number} partCount
 * @property {string} expiresAt
 */

const RESUME_ITEM = "quota-uploads:resume";
// POST /uploads/{id}/parts signs at most this many parts per request.
const MAX_PARTS_PER_REQUEST = 1000;
const MAX_RETRY_DELAY_MS = 20_000;

/** An answer of the API other than success; `body` is its JSON `{error, message, …}`. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {any} body
   */
  constructor(status, body) {
    super(body?.message ?? `The API answered ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

/** The API's 507: the upload does not fit the user's quota, with the numbers to say why. */
export class QuotaExceededError extends ApiError {
  /** @param {any} body */
  constructor(body) {
    super(507, body);
    this.name = "QuotaExceededError";
    /** @type {number} */ this.usedBytes = body.usedBytes;
    /** @type {number} */ this.reservedBytes = body.reservedBytes;
    /** @type {number} */ this.quotaBytes = body.quotaBytes;
    /** @type {number} */ this.requestedBytes = body.requestedBytes;
    /** @type {number} */ this.availableBytes = body.availableBytes;
  }
}

/** S3 refused a PUT (`status` and S3's error `code`), or the connection failed (`status` 0). */
export class TransferError extends Error {
  /**
   * @param {number} status
   * @param {string} [code]
   */
  constructor(status, code) {
    super(status ? `S3 answered ${status}${code ? ` ${code}` : ""}` : "The connection to S3 failed");
    this.name = "TransferError";
    this.status = status;
    this.code = code;
  }
}

/** The API's client: one method per route, and `upload`, which does the whole upload. */
export class QuotaUploads {
  /** @type {string} */ #apiUrl;
  /** @type {() => string | Promise<string>} */ #getIdToken;
  /** @type {typeof fetch} */ #fetch;
  /** @type {typeof XMLHttpRequest | undefined} */ #Xhr;
  /** @type {ResumeStore} */ #resume;
  /** @type {number} */ #retries;
  /** @type {number} */ #retryDelayMs;

  /** @param {ClientOptions} options */
  constructor(options) {
    this.#apiUrl = options.apiUrl.replace(/\/+$/, "");
    this.#getIdToken = options.getIdToken;
    const fetchImpl = options.fetch ?? globalThis.fetch;
    // Called as a plain function: browsers refuse a fetch detached from its window.
    this.#fetch = (input, init) => fetchImpl(input, init);
    this.#Xhr = options.XMLHttpRequest ?? globalThis.XMLHttpRequest;
    this.#resume = new ResumeStore(options.storage === undefined ? browserStorage() : options.storage);
    this.#retries = options.retries ?? 4;
    this.#retryDelayMs = options.retryDelayMs ?? 500;
  }

  /** @returns {Promise<Usage>} */
  usage() {
    return this.#call("GET", "/usage", undefined, true);
  }

  /**
   * One page of the user's files, in key order.
   * @param {{limit?: number, nextToken?: string | null}} [page]
   * @returns {Promise<FilePage>}
   */
  async list({ limit = 100, nextToken = null } = {}) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (nextToken) query.set("nextToken", nextToken);
    /** @type {FilePage} */
    const page = await this.#call("GET", `/files?${query}`, undefined, true);
    return { files: page.files, nextToken: page.nextToken ?? null };
  }

  /**
   * A 5-minute URL that downloads one of the user's files under its filename (see
   * saveDownload); ApiError 404 for a key that is not theirs.
   * @param {string} key
   * @returns {Promise<FileDownload>}
   */
  download(key) {
    return this.#call("GET", `/files/${encodeURIComponent(key)}`, undefined, true);
  }

  /**
   * Deletes one of the user's files; ApiError 404 when there is no such file of theirs.
   * @param {string} key
   * @returns {Promise<void>}
   */
  remove(key) {
    return this.#call("DELETE", `/files/${encodeURIComponent(key)}`);
  }

  /**
   * Asks for an upload: a single PUT's URL or a multipart plan, or QuotaExceededError.
   * Never retried: a retry would be a second grant, reserving the bytes twice.
   * @param {UploadRequest} request
   * @returns {Promise<Grant>}
   */
  startUpload(request) {
    return this.#call("POST", "/uploads", request);
  }

  /**
   * Presigned PUT URLs for parts of a multipart upload (at most 1000 per call).
   * @param {string} uploadId
   * @param {number[]} partNumbers
   * @returns {Promise<SignedPart[]>}
   */
  async signParts(uploadId, partNumbers) {
    /** @type {{parts: SignedPart[]}} */
    const signed = await this.#call(
      "POST",
      `/uploads/${encodeURIComponent(uploadId)}/parts`,
      { partNumbers },
      true,
    );
    return signed.parts;
  }

  /**
   * The parts S3 holds so far of a multipart upload.
   * @param {string} uploadId
   * @returns {Promise<UploadedPart[]>}
   */
  async listParts(uploadId) {
    /** @type {{parts: UploadedPart[]}} */
    const listed = await this.#call("GET", `/uploads/${encodeURIComponent(uploadId)}/parts`, undefined, true);
    return listed.parts;
  }

  /**
   * @param {string} uploadId
   * @param {{partNumber: number, etag: string}[]} parts
   * @returns {Promise<CompletedUpload>}
   */
  completeUpload(uploadId, parts) {
    return this.#call("POST", `/uploads/${encodeURIComponent(uploadId)}/complete`, { parts });
  }

  /**
   * Cancels an upload, single PUT or multipart: its reservation is released at once.
   * @param {string} uploadId
   * @returns {Promise<void>}
   */
  cancelUpload(uploadId) {
    return this.#call("DELETE", `/uploads/${encodeURIComponent(uploadId)}`);
  }

  /**
   * Uploads a file (a Blob) the way the API answers: one PUT, or parts sent `concurrency` at a
   * time, each retried with backoff. An interrupted multipart upload is remembered in the
   * storage and resumed when the same file is uploaded again, even after a reload: only the
   * parts S3 does not hold yet are sent. Aborting `signal` cancels the upload and releases its
   * reservation; the promise then rejects with the signal's reason.
   * @param {Blob & {name?: string, lastModified?: number}} file
   * @param {UploadOptions} [options]
   * @returns {Promise<UploadResult>}
   */
  async upload(file, options = {}) {
    const { signal, concurrency = 4 } = options;
    throwIfAborted(signal);
    if (!(Number.isInteger(concurrency) && concurrency >= 1))
      throw new RangeError("concurrency must be a positive integer");
    const filename = options.filename ?? file.name;
    if (!filename) throw new TypeError("upload() needs a filename for a Blob without a name");
    const contentType = options.contentType || file.type || "application/octet-stream";
    const resumeKey =
      options.resumeKey ?? JSON.stringify([filename, file.size, file.lastModified ?? null, contentType]);
    const saved = await this.#resume.get(resumeKey);
    if (saved?.size === file.size) {
      const resumed = await this.#resumeParts(file, resumeKey, saved, concurrency, options);
      if (resumed) return resumed;
    }
    // The grant does not get the signal: an answer cut off would leave a reservation whose id
    // the client never learns (held until it expires), where an answer awaited can be cancelled.
    const grant = await this.startUpload({ filename, size: file.size, contentType });
    const { uploadId, key, method, usage } = grant;
    options.onStart?.({ uploadId, key, method, resumedBytes: 0, usage });
    if (grant.method === "PUT") return this.#putWhole(file, grant, options);
    /** @type {ResumeRecord} */
    const record = {
      uploadId: grant.uploadId,
      key: grant.key,
      size: file.size,
      partSize: grant.partSize,
      partCount: grant.partCount,
      expiresAt: grant.expiresAt,
    };
    await this.#resume.set(resumeKey, record);
    return this.#putParts(file, record, new Map(), resumeKey, concurrency, options);
  }

  /**
   * Carries on with a remembered multipart upload, or returns null to start afresh.
   * @param {Blob} file
   * @param {string} resumeKey
   * @param {ResumeRecord} saved
   * @param {number} concurrency
   * @param {UploadOptions} options
   * @returns {Promise<UploadResult | null>}
   */
  async #resumeParts(file, resumeKey, saved, concurrency, options) {
    let uploaded;
    try {
      uploaded = await this.listParts(saved.uploadId);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      await this.#resume.delete(resumeKey);
      // Gone: aborted, expired, or completed with the answer lost, and then the file is there.
      const existing = await this.download(saved.key).catch(ignoreNotFound);
      if (existing?.size !== saved.size) return null;
      return { uploadId: saved.uploadId, key: saved.key, size: saved.size, method: "MULTIPART" };
    }
    /** @type {Map<number, string>} */
    const done = new Map();
    for (const part of uploaded) {
      // A part cut short is sent again (S3 keeps the last one sent).
      if (part.size === partBytes(saved, part.partNumber)) done.set(part.partNumber, part.etag);
    }
    const { uploadId, key } = saved;
    options.onStart?.({ uploadId, key, method: "MULTIPART", resumedBytes: bytesOf(saved, done.keys()) });
    return this.#putParts(file, saved, done, resumeKey, concurrency, options);
  }

  /**
   * @param {Blob} file
   * @param {SinglePutGrant} grant
   * @param {UploadOptions} options
   * @returns {Promise<UploadResult>}
   */
  async #putWhole(file, grant, options) {
    const { signal, onProgress } = options;
    try {
      throwIfAborted(signal);
      await this.#withRetries(signal, false, async (attempt) => {
        try {
          await this.#put(grant.url, grant.headers, file, signal, (loaded) =>
            onProgress?.({ loaded, total: file.size }),
          );
        } catch (error) {
          // If-None-Match: * lets the URL create its object once, so a retry refused with 412
          // means an earlier attempt arrived and only its answer was lost.
          if (!(attempt > 0 && error instanceof TransferError && error.status === 412)) throw error;
        }
      });
    } catch (error) {
      // A single PUT cannot be resumed: whatever stopped it, give the reservation back now.
      await this.#cancelQuietly(grant.uploadId);
      throw signal?.aborted ? abortReason(signal) : error;
    }
    onProgress?.({ loaded: file.size, total: file.size });
    return { uploadId: grant.uploadId, key: grant.key, size: file.size, method: "PUT" };
  }

  /**
   * Sends the parts not in `done` and completes the upload. A failure leaves the upload to be
   * resumed (its reservation lasts until expiresAt); an abort cancels it.
   * @param {Blob} file
   * @param {ResumeRecord} plan
   * @param {Map<number, string>} done ETags of the parts S3 already holds
   * @param {string} resumeKey
   * @param {number} concurrency
   * @param {UploadOptions} options
   * @returns {Promise<UploadResult>}
   */
  async #putParts(file, plan, done, resumeKey, concurrency, options) {
    const { signal, onProgress } = options;
    let sentBytes = bytesOf(plan, done.keys());
    /** @type {Map<number, number>} bytes sent so far of each part in flight */
    const inFlight = new Map();
    const report = () => {
      let loaded = sentBytes;
      for (const bytes of inFlight.values()) loaded += bytes;
      onProgress?.({ loaded, total: file.size });
    };
    report();

    /** @type {number[]} */
    const todo = [];
    for (let number = 1; number <= plan.partCount; number += 1) if (!done.has(number)) todo.push(number);
    // Stops every part when one fails for good or the caller aborts.
    const stop = new AbortController();
    const stopAll = () => stop.abort(signal?.reason);
    signal?.addEventListener("abort", stopAll, { once: true });
    const urls = new PartUrls(this, plan.uploadId, todo, Math.min(MAX_PARTS_PER_REQUEST, 2 * concurrency));
    /** @param {number} number */
    const sendPart = (number) =>
      this.#withRetries(stop.signal, true, async () => {
        const part = await urls.get(number);
        const start = (number - 1) * plan.partSize;
        try {
          const etag = await this.#put(
            part.url,
            part.headers,
            file.slice(start, start + partBytes(plan, number)),
            stop.signal,
            (loaded) => {
              inFlight.set(number, loaded);
              report();
            },
          );
          if (!etag) throw new Error("S3's answer shows no ETag: the bucket's CORS rules must expose it");
          return etag;
        } catch (error) {
          inFlight.delete(number);
          // Most likely an expired URL (they last as long as a single PUT's): sign it again.
          if (error instanceof TransferError && error.status === 403) urls.forget(number);
          throw error;
        }
      });
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const number = todo[next];
        next += 1;
        const etag = await sendPart(number);
        inFlight.delete(number);
        done.set(number, etag.replaceAll('"', ""));
        sentBytes += partBytes(plan, number);
        report();
      }
    };
    /** @type {CompletedUpload} */
    let completed;
    try {
      // Also when the caller aborted before the listener was added.
      throwIfAborted(signal);
      await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
      throwIfAborted(signal);
      const parts = [...done].sort(([a], [b]) => a - b).map(([partNumber, etag]) => ({ partNumber, etag }));
      completed = await this.completeUpload(plan.uploadId, parts);
    } catch (error) {
      stop.abort(error);
      if (!signal?.aborted) throw error;
      await this.#resume.delete(resumeKey);
      await this.#cancelQuietly(plan.uploadId);
      throw abortReason(signal);
    } finally {
      signal?.removeEventListener("abort", stopAll);
    }
    await this.#resume.delete(resumeKey);
    return { uploadId: plan.uploadId, key: completed.key, size: completed.size, method: "MULTIPART" };
  }

  /**
   * Releases a reservation after an abort or a failed single PUT. A 404 means there is nothing
   * left to release (the bytes arrived, or a first attempt did release it); should the API be
   * out of reach, the reservation ends by itself at its expiresAt.
   * @param {string} uploadId
   */
  async #cancelQuietly(uploadId) {
    await this.#call("DELETE", `/uploads/${encodeURIComponent(uploadId)}`, undefined, true).catch(() => {});
  }

  /**
   * Runs `attempt` until it succeeds, retrying what may pass next time (a lost connection,
   * S3's 5xx, 408 and 429, and 403 where the URL can be signed again) after a pause of full
   * jitter: a random time up to retryDelayMs doubled per retry, so parallel parts do not
   * retry in step.
   * @template T
   * @param {AbortSignal | undefined} signal
   * @param {boolean} resignable
   * @param {(attempt: number) => Promise<T>} attempt
   * @returns {Promise<T>}
   */
  async #withRetries(signal, resignable, attempt) {
    for (let retry = 0; ; retry += 1) {
      try {
        return await attempt(retry);
      } catch (error) {
        const again = error instanceof TransferError && isRetryable(error.status, resignable);
        if (!again || retry >= this.#retries || signal?.aborted) throw error;
      }
      await sleep(this.#backoff(retry), signal);
    }
  }

  /** @param {number} retry */
  #backoff(retry) {
    return Math.random() * Math.min(MAX_RETRY_DELAY_MS, this.#retryDelayMs * 2 ** retry);
  }

  /**
   * One PUT to S3 with XMLHttpRequest (for progress); resolves with the answer's ETag.
   * @param {string} url
   * @param {Record<string, string>} headers
   * @param {Blob} body
   * @param {AbortSignal | undefined} signal
   * @param {(loaded: number) => void} onProgress
   * @returns {Promise<string | null>}
   */
  #put(url, headers, body, signal, onProgress) {
    const Xhr = this.#Xhr;
    if (!Xhr) throw new TypeError("quota-uploads sends files with XMLHttpRequest, which is missing here");
    return new Promise((resolve, reject) => {
      throwIfAborted(signal);
      const request = new Xhr();
      const abort = () => request.abort();
      /** @param {() => void} settle */
      const finish = (settle) => () => {
        signal?.removeEventListener("abort", abort);
        settle();
      };
      request.open("PUT", url);
      for (const [name, value] of Object.entries(headers)) {
        // XMLHttpRequest sets Content-Length from the body (and refuses to be told): the
        // signed value is exactly the body's size.
        if (name.toLowerCase() !== "content-length") request.setRequestHeader(name, value);
      }
      request.upload.onprogress = (event) => onProgress(event.loaded);
      request.onload = finish(() => {
        if (request.status >= 200 && request.status < 300) resolve(request.getResponseHeader("ETag"));
        else
          reject(new TransferError(request.status, /<Code>([^<]*)<\/Code>/.exec(request.responseText)?.[1]));
      });
      request.onerror = request.ontimeout = finish(() => reject(new TransferError(0)));
      request.onabort = finish(() => reject(abortReason(signal)));
      signal?.addEventListener("abort", abort, { once: true });
      request.send(body);
    });
  }

  /**
   * One API request, with the current ID token. Idempotent requests are retried, with the
   * same backoff as parts, when the connection fails or the API answers 5xx or 429.
   * @param {string} method
   * @param {string} path
   * @param {object} [body]
   * @param {boolean} [idempotent]
   * @returns {Promise<any>}
   */
  async #call(method, path, body, idempotent = false) {
    for (let retry = 0; ; retry += 1) {
      const last = !idempotent || retry >= this.#retries;
      /** @type {Record<string, string>} */
      const headers = { Authorization: `Bearer ${await this.#getIdToken()}` };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      let response;
      try {
        response = await this.#fetch(`${this.#apiUrl}${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {
        if (last) throw error;
        await sleep(this.#backoff(retry));
        continue;
      }
      if (!last && isRetryable(response.status, false)) {
        await sleep(this.#backoff(retry));
        continue;
      }
      const text = await response.text();
      let answer = null;
      try {
        answer = text ? JSON.parse(text) : null;
      } catch {
        answer = { message: text };
      }
      if (response.status === 507) throw new QuotaExceededError(answer);
      if (!response.ok) throw new ApiError(response.status, answer);
      return answer;
    }
  }
}

/**
 * Starts the browser's download of a file from download(): S3's answer says
 * `Content-Disposition: attachment` with the filename, so the page stays where it is.
 * @param {FileDownload} download
 * @param {Document} [document]
 */
export function saveDownload(download, document = globalThis.document) {
  const link = document.createElement("a");
  link.href = download.url;
  // Ignored for another origin (S3's), where the answer's own filename is used.
  link.download = download.filename;
  link.rel = "noopener";
  document.body.append(link);
  link.click();
  link.remove();
}

/** Part URLs, signed a batch ahead of the parts being sent, so each is fresh when used. */
class PartUrls {
  /** @type {QuotaUploads} */ #client;
  /** @type {string} */ #uploadId;
  /** @type {number[]} */ #order;
  /** @type {number} */ #batch;
  /** @type {Map<number, Promise<SignedPart>>} */ #urls = new Map();

  /**
   * @param {QuotaUploads} client
   * @param {string} uploadId
   * @param {number[]} order the parts to send, in the order they are sent
   * @param {number} batch
   */
  constructor(client, uploadId, order, batch) {
    this.#client = client;
    this.#uploadId = uploadId;
    this.#order = order;
    this.#batch = batch;
  }

  /** @param {number} number */
  get(number) {
    const known = this.#urls.get(number);
    if (known) return known;
    const numbers = [number];
    for (
      let index = this.#order.indexOf(number) + 1;
      index < this.#order.length && numbers.length < this.#batch;
      index += 1
    ) {
      if (!this.#urls.has(this.#order[index])) numbers.push(this.#order[index]);
    }
    const signing = this.#client.signParts(this.#uploadId, numbers);
    for (const wanted of numbers) {
      const url = signing.then((parts) => {
        const part = parts.find((signed) => signed.partNumber === wanted);
        if (!part) throw new Error(`the API signed no URL for part ${wanted}`);
        return part;
      });
      // Parts still unsent when the upload stops are never awaited: no unhandled rejection.
      url.catch(() => {});
      this.#urls.set(wanted, url);
    }
    return /** @type {Promise<SignedPart>} */ (this.#urls.get(number));
  }

  /** @param {number} number */
  forget(number) {
    this.#urls.delete(number);
  }
}

/**
 * Remembered multipart uploads, one JSON item keyed by resumeKey. Writes go one at a time, so
 * two uploads finishing together do not drop each other's change; records past their expiresAt
 * (the reservation is gone, nothing left to resume) are dropped at every write.
 */
class ResumeStore {
  /** @type {ResumeStorage} */ #storage;
  /** @type {Promise<unknown>} */ #writes = Promise.resolve();

  /** @param {ResumeStorage | null} storage */
  constructor(storage) {
    this.#storage = storage ?? memoryStorage();
  }

  /**
   * @param {string} key
   * @returns {Promise<ResumeRecord | null>}
   */
  async get(key) {
    await this.#writes;
    const record = (await this.#read())[key];
    return record && Date.parse(record.expiresAt) > Date.now() ? record : null;
  }

  /**
   * @param {string} key
   * @param {ResumeRecord} record
   */
  set(key, record) {
    return this.#write((records) => {
      records[key] = record;
    });
  }

  /** @param {string} key */
  delete(key) {
    return this.#write((records) => {
      delete records[key];
    });
  }

  /** @param {(records: Record<string, ResumeRecord>) => void} change */
  #write(change) {
    const written = this.#writes.then(async () => {
      const records = await this.#read();
      change(records);
      for (const [key, record] of Object.entries(records)) {
        if (!(Date.parse(record.expiresAt) > Date.now())) delete records[key];
      }
      await this.#storage.setItem(RESUME_ITEM, JSON.stringify(records));
    });
    this.#writes = written.catch(() => {});
    return written;
  }

  /** @returns {Promise<Record<string, ResumeRecord>>} */
  async #read() {
    try {
      return JSON.parse((await this.#storage.getItem(RESUME_ITEM)) ?? "{}") ?? {};
    } catch {
      return {}; // unreadable: nothing to resume, and the next write replaces it
    }
  }
}

/** @returns {ResumeStorage | null} */
function browserStorage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // reading localStorage throws where the browser blocks it
  }
}

/** @returns {ResumeStorage} */
function memoryStorage() {
  /** @type {Map<string, string>} */
  const items = new Map();
  return { getItem: (key) => items.get(key) ?? null, setItem: (key, value) => void items.set(key, value) };
}

/**
 * Exact size of part `number`: the last takes the remainder.
 * @param {ResumeRecord} plan
 * @param {number} number
 */
function partBytes(plan, number) {
  return number < plan.partCount ? plan.partSize : plan.size - plan.partSize * (plan.partCount - 1);
}

/**
 * @param {ResumeRecord} plan
 * @param {Iterable<number>} numbers
 */
function bytesOf(plan, numbers) {
  let bytes = 0;
  for (const number of numbers) bytes += partBytes(plan, number);
  return bytes;
}

/**
 * @param {number} status 0 for a connection that failed
 * @param {boolean} resignable S3 answers 403 to an expired URL, which signing again cures
 */
function isRetryable(status, resignable) {
  return status === 0 || status === 408 || status === 429 || status >= 500 || (resignable && status === 403);
}

/** @param {unknown} error */
function ignoreNotFound(error) {
  if (error instanceof ApiError && error.status === 404) return null;
  throw error;
}

/** @param {AbortSignal | undefined} signal */
function abortReason(signal) {
  // React Native's AbortSignal has no reason.
  return signal?.reason ?? Object.assign(new Error("The upload was aborted"), { name: "AbortError" });
}

/** @param {AbortSignal | undefined} signal */
function throwIfAborted(signal) {
  if (signal?.aborted) throw abortReason(signal);
}

/**
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    throwIfAborted(signal);
    const wake = () => {
      signal?.removeEventListener("abort", stop);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    signal?.addEventListener("abort", stop, { once: true });
  });
}
