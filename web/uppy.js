// Stock Uppy (@uppy/core, @uppy/dashboard, @uppy/aws-s3) uploading through the quota API.
// Uppy sees each file, so it sends the size; it also chunks files itself, so it asks for
// multipart and names its part size, using the same rule as the service.
import { AwsS3, Dashboard, Uppy } from "/vendor/uppy/uppy.min.mjs";
import { config, onSignIn } from "/session.js";

const form = document.getElementById("signin");
const api = await new Promise((resolve) => onSignIn(form, resolve));
form.remove();

function refused(answer) {
  // Uppy shows the error's message; a 507 carries the whole explanation.
  return new Error(answer.body?.message || `The service answered ${answer.status}`);
}

async function showUsage() {
  const { body } = await api("GET", "/usage");
  document.getElementById("usage-text").textContent =
    `${body.usedBytes} bytes used, ${body.reservedBytes} reserved of ${body.quotaBytes} ` +
    `(${body.objectCount} files)`;
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
      const answer = await api("POST", "/uploads", request(file, false));
      if (answer.status !== 201) throw refused(answer);
      // Browsers set Content-Length themselves, from the body.
      const { "Content-Length": _, ...headers } = answer.body.headers;
      return { method: "PUT", url: answer.body.url, headers, fields: {} };
    },
    async createMultipartUpload(file) {
      const answer = await api("POST", "/uploads", request(file, true));
      if (answer.status !== 201) throw refused(answer);
      return { uploadId: answer.body.uploadId, key: answer.body.key };
    },
    async signPart(file, { uploadId, partNumber }) {
      const answer = await api("POST", `/uploads/${uploadId}/parts`, { partNumbers: [partNumber] });
      if (answer.status !== 200) throw refused(answer);
      return { url: answer.body.parts[0].url, headers: {} };
    },
    async listParts(file, { uploadId }) {
      const answer = await api("GET", `/uploads/${uploadId}/parts`);
      if (answer.status !== 200) throw refused(answer);
      return answer.body.parts.map((p) => ({ PartNumber: p.partNumber, Size: p.size, ETag: p.etag }));
    },
    async completeMultipartUpload(file, { uploadId, parts }) {
      const answer = await api("POST", `/uploads/${uploadId}/complete`, {
        parts: parts.map((p) => ({ partNumber: p.PartNumber, etag: p.ETag.replaceAll('"', "") })),
      });
      if (answer.status !== 200) throw refused(answer);
      return { location: answer.body.key };
    },
    async abortMultipartUpload(file, { uploadId }) {
      await api("DELETE", `/uploads/${uploadId}`);
    },
  });

uppy.on("complete", showUsage);
window.uppy = uppy;
await showUsage();
