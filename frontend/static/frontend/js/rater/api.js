// JSON calls to the rater API with the session cookie and the CSRF token.

export class Api {
  constructor({ csrfToken }) {
    this.csrfToken = csrfToken;
  }

  // Returns {status, data}; data is null for empty bodies. Network errors give status 0.
  async post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          Accept: "application/json",
          "Content-Type": "application/json",
          "X-CSRFToken": this.csrfToken,
        },
        body: body === undefined ? "{}" : JSON.stringify(body),
      });
    } catch (error) {
      return { status: 0, data: { detail: "The network is unreachable. Try again." } };
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch (error) {
        data = { detail: `Unexpected answer from the server (${response.status}).` };
      }
    }
    return { status: response.status, data };
  }
}
