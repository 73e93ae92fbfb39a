// Project page, Raters section: add raters through the API and show new passwords once.
// Built with textContent only: usernames and messages are never parsed as HTML.

const form = document.getElementById("raters-form");
const result = document.getElementById("raters-result");

function cell(tag, text) {
  const node = document.createElement(tag);
  node.textContent = text;
  return node;
}

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const usernames = form.elements.usernames.value.split(/[\s,]+/).filter(Boolean);
  if (!usernames.length) return;
  const button = document.getElementById("raters-submit");
  button.disabled = true;
  result.textContent = "Adding…";
  let response;
  try {
    response = await fetch(form.dataset.endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": form.elements.csrfmiddlewaretoken.value,
      },
      body: JSON.stringify({ usernames, create_missing: true }),
    });
  } catch (error) {
    result.textContent = "The network is unreachable.";
    button.disabled = false;
    return;
  }
  button.disabled = false;
  const data = await response.json().catch(() => ({}));
  if (response.status !== 201) {
    result.textContent = data.detail || `Not added (${response.status}).`;
    return;
  }
  const table = document.createElement("table");
  const head = document.createElement("tr");
  for (const title of ["Username", "Result", "Password (shown once)"]) head.append(cell("th", title));
  table.append(head);
  for (const rater of data.raters) {
    const row = document.createElement("tr");
    row.append(cell("td", rater.username));
    row.append(cell("td", rater.message ? `${rater.status}: ${rater.message}` : rater.status));
    const password = cell("td", rater.password || "");
    password.className = "password";
    row.append(password);
    table.append(row);
  }
  result.replaceChildren(
    cell("p", `${data.created} account(s) created. Copy the passwords now: they are not shown again. Reload to see the list.`),
    table,
  );
  form.reset();
});
