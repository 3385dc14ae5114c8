// The local web client: sign in, upload through presigned URLs, watch usage, delete files.
import { config, onSignIn } from "/session.js";

const $ = (id) => document.getElementById(id);
let api = null;
let usage = null;
let nextToken = null;

const units = ["B", "KiB", "MiB", "GiB", "TiB"];
export function formatBytes(bytes) {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function showUsage(next) {
  usage = next;
  const quota = Math.max(next.quotaBytes, 1);
  $("bar-used").style.width = `${Math.min(100, (100 * next.usedBytes) / quota)}%`;
  $("bar-reserved").style.width = `${Math.min(100, (100 * next.reservedBytes) / quota)}%`;
  $("usage-bar").setAttribute("aria-label", `${next.percentUsed}% used`);
  $("usage-text").textContent =
    `${formatBytes(next.usedBytes)} used, ${formatBytes(next.reservedBytes)} reserved of ` +
    `${formatBytes(next.quotaBytes)} (${next.percentUsed}% used, ${next.objectCount} files)`;
  const warning = $("warning");
  warning.hidden = next.percentUsed < config.userAlertPercent;
  warning.textContent = next.percentUsed >= 100
    ? "Your storage is full. Delete files to upload more."
    : `You have used ${next.percentUsed}% of your storage. Consider deleting files you no longer need.`;
}

async function refreshUsage() {
  const { status, body } = await api("GET", "/usage");
  if (status === 200) showUsage(body);
  return body;
}

// Usage follows S3 events, so it changes a moment after the bytes land: poll until it moves.
async function awaitUsageChange(before, timeoutMs = 10000) {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const now = await refreshUsage();
    if (now.usedBytes !== before.usedBytes || now.reservedBytes !== before.reservedBytes ||
        now.objectCount !== before.objectCount) return now;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return usage;
}

function showRefusal(file, body) {
  const box = $("refusal");
  box.hidden = false;
  box.textContent =
    `“${file.name}” needs ${formatBytes(body.requestedBytes)} but only ` +
    `${formatBytes(body.availableBytes)} of your ${formatBytes(body.quotaBytes)} are free ` +
    `(${formatBytes(body.usedBytes)} used, ${formatBytes(body.reservedBytes)} reserved). ` +
    "Delete files to free space, then try again.";
}

function uploadRow(file) {
  const row = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = `${file.name} (${formatBytes(file.size)})`;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  const state = document.createElement("span");
  state.className = "state";
  state.textContent = "waiting";
  row.append(name, bar, state);
  $("uploads").prepend(row);
  return { bar, state };
}

function put(grant, file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("PUT", grant.url);
    // Browsers set Content-Length from the body themselves; it must equal the signed size.
    for (const [name, value] of Object.entries(grant.headers)) {
      if (name.toLowerCase() !== "content-length") request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (event) => onProgress(event.loaded, event.total);
    request.onload = () => (request.status < 300 ? resolve() : reject(new Error(`S3 answered ${request.status}`)));
    request.onerror = () => reject(new Error("network error"));
    request.send(file);
  });
}

async function upload(file) {
  const { bar, state } = uploadRow(file);
  const { status, body } = await api("POST", "/uploads", {
    filename: file.name,
    size: file.size,
    contentType: file.type || "application/octet-stream",
  });
  if (status === 507) {
    state.textContent = "no space";
    state.classList.add("failed");
    showRefusal(file, body);
    return;
  }
  if (status !== 201) {
    state.textContent = body?.message || `error ${status}`;
    state.classList.add("failed");
    return;
  }
  $("refusal").hidden = true;
  showUsage(body.usage);
  state.textContent = "uploading";
  try {
    await put(body, file, (loaded, total) => { bar.value = total ? (100 * loaded) / total : 100; });
  } catch (error) {
    state.textContent = error.message;
    state.classList.add("failed");
    return;
  }
  bar.value = 100;
  state.textContent = "done";
  await awaitUsageChange(body.usage);
  await loadFiles(true);
}

async function loadFiles(reset) {
  if (reset) { nextToken = null; $("files").replaceChildren(); }
  const query = new URLSearchParams({ limit: "50", ...(nextToken ? { nextToken } : {}) });
  const { status, body } = await api("GET", `/files?${query}`);
  if (status !== 200) return;
  for (const file of body.files) $("files").append(fileRow(file));
  nextToken = body.nextToken || null;
  $("more").hidden = !nextToken;
  $("empty").hidden = $("files").children.length > 0;
}

function fileRow(file) {
  const row = document.createElement("tr");
  const cells = [file.filename, formatBytes(file.size), new Date(file.uploadedAt).toLocaleString()];
  cells.forEach((text, index) => {
    const cell = document.createElement("td");
    cell.textContent = text;
    if (index === 1) cell.className = "num";
    row.append(cell);
  });
  const action = document.createElement("td");
  const remove = document.createElement("button");
  remove.className = "link";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete ${file.filename}`);
  remove.onclick = async () => {
    const before = usage;
    const { status } = await api("DELETE", `/files/${encodeURIComponent(file.key)}`);
    if (status === 204 || status === 404) row.remove();
    $("empty").hidden = $("files").children.length > 0;
    await awaitUsageChange(before);
  };
  action.append(remove);
  row.append(action);
  return row;
}

onSignIn($("signin"), async (signedIn) => {
  api = signedIn;
  $("app").hidden = false;
  $("refusal").hidden = true;
  $("uploads").replaceChildren();
  await refreshUsage();
  await loadFiles(true);
});

$("picker").addEventListener("change", (event) => {
  for (const file of event.target.files) upload(file);
  event.target.value = "";
});
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  for (const file of event.dataTransfer.files) upload(file);
});
$("more").addEventListener("click", () => loadFiles(false));
