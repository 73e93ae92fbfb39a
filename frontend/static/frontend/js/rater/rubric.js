// The rubric: one row per question with its allowed choices (Left / Tie / Right), a row
// cursor for the keyboard, and the answers in page terms ({key: "left"|"tie"|"right"}).
// Everything is built with DOM nodes and textContent: question texts are never parsed as HTML.

const LABELS = { left: "Left", tie: "Tie", right: "Right" };
const KEYS = { left: "← 1", tie: "T 2", right: "→ 3" };
const ORDER = ["left", "tie", "right"];

function element(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "text") node.textContent = value;
    else if (name === "className") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

export class Rubric extends EventTarget {
  constructor(form) {
    super();
    this.form = form;
    this.questions = [];
    this.rows = [];
    this.answers = {};
    this.cursor = 0;
  }

  render(questions) {
    this.questions = questions;
    this.answers = {};
    this.cursor = 0;
    this.rows = questions.map((question, index) => this._row(question, index));
    this.form.replaceChildren(...this.rows);
    this._highlight();
    this._changed();
  }

  _row(question, index) {
    const helpId = `q${index}-help`;
    const legend = element("legend", {}, [
      element("span", { className: "q-num", text: `${index + 1}` }),
      element("span", { className: "q-text", text: question.text }),
    ]);
    if (question.required) {
      legend.append(element("span", { className: "q-required", "aria-hidden": "true", text: " *" }));
      legend.append(element("span", { className: "visually-hidden", text: " (required)" }));
    }
    const choices = element("div", { className: "choices" });
    for (const side of ORDER) {
      if (!question.choices.includes(side)) continue;
      const input = element("input", { type: "radio", name: `q${index}`, value: side, "aria-describedby": helpId });
      input.addEventListener("change", () => {
        if (input.checked) this.set(index, side, { advance: false });
      });
      input.addEventListener("focus", () => {
        this.cursor = index;
        this._highlight();
      });
      choices.append(
        element("label", { className: `choice choice-${side}` }, [
          input,
          element("span", { text: LABELS[side] }),
          element("kbd", { "aria-hidden": "true", text: KEYS[side] }),
        ]),
      );
    }
    // Question and help text share one line when they fit (the page must fit 1280x720).
    const label = element("div", { className: "q-label" }, [
      legend,
      element("p", { className: "q-help", id: helpId, text: question.help_text || "" }),
    ]);
    const row = element("fieldset", { className: "q", "data-key": question.key }, [label, choices]);
    row.addEventListener("click", () => {
      this.cursor = index;
      this._highlight();
    });
    return row;
  }

  _highlight() {
    this.rows.forEach((row, index) => {
      row.classList.toggle("current", index === this.cursor);
      if (index === this.cursor) row.setAttribute("aria-current", "step");
      else row.removeAttribute("aria-current");
    });
  }

  _changed() {
    this.dispatchEvent(new Event("change"));
  }

  // Moves the row cursor and puts the focus in that row (on its answer, or its first choice).
  move(delta) {
    if (!this.rows.length) return;
    this.cursor = Math.max(0, Math.min(this.rows.length - 1, this.cursor + delta));
    this._highlight();
    this.focusCurrent();
  }

  focusCurrent() {
    const row = this.rows[this.cursor];
    if (!row) return;
    const target = row.querySelector("input:checked") || row.querySelector("input");
    if (target) target.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  // Answers the current row; returns false when that question does not allow ``side``.
  choose(side) {
    const question = this.questions[this.cursor];
    if (!question || !question.choices.includes(side)) return false;
    this.set(this.cursor, side, { advance: true });
    return true;
  }

  set(index, side, { advance }) {
    const question = this.questions[index];
    this.answers[question.key] = side;
    const row = this.rows[index];
    const input = row.querySelector(`input[value="${side}"]`);
    if (input) input.checked = true;
    row.classList.add("answered");
    row.classList.remove("error");
    if (advance) {
      // Next unanswered question below, else stay.
      const next = this.questions.findIndex((q, i) => i > index && !(q.key in this.answers));
      if (next !== -1) this.cursor = next;
      this._highlight();
      this.focusCurrent();
    }
    this._changed();
  }

  markErrors(errors) {
    this.rows.forEach((row, index) => {
      row.classList.toggle("error", this.questions[index].key in errors);
    });
  }

  get complete() {
    return this.questions.every((q) => !q.required || q.key in this.answers);
  }

  get missing() {
    return this.questions.filter((q) => q.required && !(q.key in this.answers)).length;
  }

  values() {
    return { ...this.answers };
  }
}
