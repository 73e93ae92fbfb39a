// Manifest upload with progress: the upload itself, then the media work it queued.
const form = document.getElementById("import-form");
const box = document.getElementById("import-progress");
const uploadBar = document.getElementById("upload-bar");
const mediaBar = document.getElementById("media-bar");
const statusLine = document.getElementById("import-status");

function csrfToken() {
  return form.querySelector("input[name=csrfmiddlewaretoken]").value;
}

function describe(report) {
  const m = report.media;
  return `${report.total_rows} rows: ${report.created_rows} new, ${report.unchanged_rows} unchanged, ` +
    `${report.error_rows} bad. Media: ${m.ready} ready, ${m.pending} pending, ${m.failed} failed.`;
}

async function poll(url) {
  for (;;) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) { statusLine.textContent = `Could not read the report (${response.status}).`; return; }
    const report = await response.json();
    const m = report.media;
    const total = m.ready + m.pending + m.failed;
    mediaBar.value = total ? Math.round(100 * (m.ready + m.failed) / total) : 100;
    statusLine.textContent = describe(report);
    if (m.pending === 0) {
      statusLine.innerHTML = "";
      statusLine.append(describe(report) + " ");
      const link = document.createElement("a");
      link.href = `${location.pathname}imports/${report.id}/`;
      link.textContent = "See the full report";
      statusLine.append(link);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

form?.addEventListener("submit", (event) => {
  event.preventDefault();
  const file = document.getElementById("manifest-file").files[0];
  if (!file) return;
  box.hidden = false;
  uploadBar.value = 0;
  mediaBar.value = 0;
  statusLine.textContent = "Uploading…";
  const data = new FormData();
  data.append("file", file);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.dataset.endpoint);
  xhr.setRequestHeader("X-CSRFToken", csrfToken());
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) uploadBar.value = Math.round(100 * e.loaded / e.total); };
  xhr.onload = () => {
    uploadBar.value = 100;
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 201 && body) {
      statusLine.textContent = describe(body);
      poll(`${form.dataset.endpoint}${body.id}/`);
    } else if (body && body.error) {
      statusLine.textContent = `The file was refused: ${body.error}`;
    } else if (body && body.file) {
      statusLine.textContent = `The file was refused: ${body.file.join(" ")}`;
    } else if (body && body.detail) { // 413 (too large), 403, 503: the server's own words
      statusLine.textContent = `The file was refused: ${body.detail}`;
    } else {
      statusLine.textContent = `Upload failed (HTTP ${xhr.status}).`;
    }
  };
  xhr.onerror = () => { statusLine.textContent = "Upload failed: network error."; };
  xhr.send(data);
});
