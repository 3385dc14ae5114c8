// Stock Uppy (@uppy/core, @uppy/dashboard, @uppy/aws-s3) uploading through the quota API, its
// hooks calling the API through the client library's route methods. Uppy sees each file, so it
// sends the size; it also chunks files itself, so it asks for multipart and names its part size,
// using the same rule as the service.
import { AwsS3, Dashboard, Uppy } from "/vendor/uppy/uppy.min.mjs";
import { QuotaUploads } from "/quota-uploads.js";
import { config, onSignIn } from "/session.js";

const form = document.getElementById("signin");
const getIdToken = await new Promise((resolve) => onSignIn(form, resolve));
form.remove();
// Uppy shows a thrown error's message; a 507's (a QuotaExceededError) carries the whole explanation.
const client = new QuotaUploads({ apiUrl: "", getIdToken });

async function showUsage() {
  const usage = await client.usage();
  document.getElementById("usage-text").textContent =
    `${usage.usedBytes} bytes used, ${usage.reservedBytes} reserved of ${usage.quotaBytes} ` +
    `(${usage.objectCount} files)`;
}

const partSizeFor = (size) => Math.max(config.multipartPartBytes, Math.ceil(size / 10000));
const request = (file, multipart) => ({
  filename: file.name,
  size: file.size,
  contentType: file.type || "application/octet-stream",
  multipart,
  ...(multipart ? { partSize: partSizeFor(file.size) } : {}),
});

const uppy = new Uppy({ autoProceed: true })
  .use(Dashboard, { inline: true, target: "#dashboard", height: 360, proudlyDisplayPoweredByUppy: false })
  .use(AwsS3, {
    shouldUseMultipart: (file) => file.size > config.multipartThresholdBytes,
    getChunkSize: (file) => partSizeFor(file.size),
    async getUploadParameters(file) {
      const grant = await client.startUpload(request(file, false));
      // Browsers set Content-Length themselves, from the body.
      const { "Content-Length": _, ...headers } = grant.headers;
      return { method: "PUT", url: grant.url, headers, fields: {} };
    },
    async createMultipartUpload(file) {
      const { uploadId, key } = await client.startUpload(request(file, true));
      return { uploadId, key };
    },
    async signPart(file, { uploadId, partNumber }) {
      const [part] = await client.signParts(uploadId, [partNumber]);
      return { url: part.url, headers: {} };
    },
    async listParts(file, { uploadId }) {
      const parts = await client.listParts(uploadId);
      return parts.map((p) => ({ PartNumber: p.partNumber, Size: p.size, ETag: p.etag }));
    },
    async completeMultipartUpload(file, { uploadId, parts }) {
      const completed = await client.completeUpload(
        uploadId,
        parts.map((p) => ({ partNumber: p.PartNumber, etag: p.ETag.replaceAll('"', "") })),
      );
      return { location: completed.key };
    },
    async abortMultipartUpload(file, { uploadId }) {
      await client.cancelUpload(uploadId);
    },
  });

uppy.on("complete", showUsage);
window.uppy = uppy;
await showUsage();
