// The local web client: sign in, upload through presigned URLs, watch usage, download and delete
// files. Every call to the service goes through the client library, quota-uploads.js.
import { QuotaExceededError, QuotaUploads, saveDownload } from "/quota-uploads.js";
import { config, onSignIn } from "/session.js";

const $ = (id) => document.getElementById(id);
let client = null;
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
  showUsage(await client.usage());
  return usage;
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

function showRefusal(file, refused) {
  const box = $("refusal");
  box.hidden = false;
  box.textContent =
    `“${file.name}” needs ${formatBytes(refused.requestedBytes)} but only ` +
    `${formatBytes(refused.availableBytes)} of your ${formatBytes(refused.quotaBytes)} are free ` +
    `(${formatBytes(refused.usedBytes)} used, ${formatBytes(refused.reservedBytes)} reserved). ` +
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
  const cancel = document.createElement("button");
  cancel.className = "link danger";
  cancel.textContent = "Cancel";
  cancel.setAttribute("aria-label", `Cancel ${file.name}`);
  row.append(name, bar, state, cancel);
  $("uploads").prepend(row);
  return { bar, state, cancel };
}

async function upload(file) {
  const { bar, state, cancel } = uploadRow(file);
  const aborting = new AbortController();
  cancel.onclick = () => aborting.abort();
  let granted = usage;
  try {
    await client.upload(file, {
      signal: aborting.signal,
      onStart: (start) => {
        $("refusal").hidden = true;
        state.textContent = start.resumedBytes ? `resuming after ${formatBytes(start.resumedBytes)}` : "uploading";
        if (start.usage) showUsage(start.usage); // the bar shows the bytes now reserved
        granted = usage;
      },
      onProgress: ({ loaded, total }) => { bar.value = total ? (100 * loaded) / total : 100; },
    });
  } catch (error) {
    state.classList.add("failed");
    if (error instanceof QuotaExceededError) {
      state.textContent = "no space";
      showRefusal(file, error);
    } else {
      state.textContent = aborting.signal.aborted ? "cancelled" : error.message;
    }
    await refreshUsage();
    return;
  } finally {
    cancel.remove();
  }
  bar.value = 100;
  state.textContent = "done";
  await loadFiles(true);
  await awaitUsageChange(granted);
}

async function loadFiles(reset) {
  if (reset) { nextToken = null; $("files").replaceChildren(); }
  const page = await client.list({ limit: 50, nextToken });
  for (const file of page.files) $("files").append(fileRow(file));
  nextToken = page.nextToken;
  $("more").hidden = !nextToken;
  $("empty").hidden = $("files").children.length > 0;
}

function actionButton(text, file, className, onclick) {
  const button = document.createElement("button");
  button.className = className;
  button.textContent = text;
  button.setAttribute("aria-label", `${text} ${file.filename}`);
  button.onclick = onclick;
  return button;
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
  const actions = document.createElement("td");
  // The URL is asked for on click: it lasts five minutes.
  const download = actionButton("Download", file, "link", async () => saveDownload(await client.download(file.key)));
  const remove = actionButton("Delete", file, "link danger", async () => {
    const before = usage;
    try {
      await client.remove(file.key);
    } catch (error) {
      if (error.status !== 404) throw error; // already gone: drop the row all the same
    }
    row.remove();
    $("empty").hidden = $("files").children.length > 0;
    await awaitUsageChange(before);
  });
  actions.append(download, " ", remove);
  row.append(actions);
  return row;
}

onSignIn($("signin"), async (getIdToken) => {
  client = new QuotaUploads({ apiUrl: "", getIdToken });
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
