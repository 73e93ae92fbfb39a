// The rater page: lease a pair, play both videos as one, answer by keyboard, submit, and the
// next pair appears without a reload.
//
// Prefetch: the API's answer names the pair this rater will most likely get next (it is not
// leased: a rater never holds two leases). Once the current rubric is answered, hidden
// <video preload="auto"> elements start loading those two videos; when the next lease is that
// pair, the already loaded elements are moved into the page instead of new ones.

import { Api } from "./api.js";
import { SyncPlayer } from "./player.js";
import { Rubric } from "./rubric.js";

const SPEEDS = [0.25, 0.5, 0.75, 1, 1.25, 1.5, 2];

const root = document.getElementById("rater");
const $ = (id) => document.getElementById(id);
const ui = {
  stage: $("stage"),
  done: $("done"),
  doneTitle: $("done-title"),
  doneText: $("done-text"),
  status: $("status"),
  prompt: $("prompt"),
  videos: $("videos"),
  frames: { left: $("frame-left"), right: $("frame-right") },
  enlarge: { left: $("enlarge-left"), right: $("enlarge-right") },
  play: $("play"),
  restart: $("restart"),
  back: $("frame-back"),
  forward: $("frame-forward"),
  scrub: $("scrub"),
  time: $("time"),
  speed: $("speed"),
  loop: $("loop"),
  submit: $("submit"),
  submitHint: $("submit-hint"),
  progress: $("progress"),
  progressText: $("progress-text"),
  instructions: $("instructions"),
  instructionsOpen: $("instructions-open"),
  skip: $("skip"),
  skipOpen: $("skip-open"),
  skipForm: $("skip-form"),
  prefetch: $("prefetch"),
  completion: $("completion"),
  completionText: $("completion-text"),
  completionCodeRow: $("completion-code-row"),
  completionCode: $("completion-code"),
  completionCopy: $("completion-copy"),
  completionCopied: $("completion-copied"),
  completionReturnRow: $("completion-return-row"),
  completionReturn: $("completion-return"),
};

const api = new Api({ csrfToken: root.dataset.csrf });
const player = new SyncPlayer();
const rubric = new Rubric($("rubric"));

const state = {
  current: null, // the API's answer for the pair on screen
  shownAt: 0,
  busy: false,
  progress: { judged: 0, available: 0 },
  prefetched: new Map(), // video URL -> <video> loading in the background
  prefetchStarted: false,
  scrubbing: false,
};

// Exposed for tests and debugging: nothing here is secret from the rater.
window.vidjudgeRater = { player, rubric, state };

function announce(text) {
  ui.status.textContent = text;
}

function makeVideo(url, poster) {
  const video = document.createElement("video");
  video.muted = true;
  video.defaultMuted = true;
  video.playsInline = true;
  video.preload = "auto";
  if (poster) video.poster = poster;
  video.src = url;
  return video;
}

function release(video) {
  video.pause();
  video.removeAttribute("src");
  video.load(); // frees the decoder and aborts the download
  video.remove();
}

function takeVideo(side, info) {
  let video = state.prefetched.get(info.video);
  if (video) state.prefetched.delete(info.video);
  else video = makeVideo(info.video, info.poster);
  if (info.poster) video.poster = info.poster;
  video.className = "clip";
  video.setAttribute("aria-label", `${side === "left" ? "Left" : "Right"} video`);
  video.removeAttribute("hidden");
  return video;
}

function startPrefetch() {
  const hint = state.current && state.current.prefetch;
  if (!hint || state.prefetchStarted) return;
  state.prefetchStarted = true;
  hint.videos.forEach((url, index) => {
    if (state.prefetched.has(url)) return;
    const video = makeVideo(url, hint.posters[index]);
    video.dataset.prefetched = "true";
    ui.prefetch.append(video);
    state.prefetched.set(url, video);
    video.load();
  });
}

function dropPrefetched() {
  for (const video of state.prefetched.values()) release(video);
  state.prefetched.clear();
}

// --- showing a pair ---------------------------------------------------------------------

function formatTime(t) {
  return (Number.isFinite(t) ? t : 0).toFixed(2);
}

function renderTime() {
  const duration = player.duration;
  const t = player.currentTime;
  ui.time.textContent = `${formatTime(t)} / ${formatTime(duration)} s`;
  if (!state.scrubbing) ui.scrub.value = duration > 0 ? Math.round((t / duration) * 1000) : 0;
  ui.scrub.setAttribute("aria-valuetext", `${formatTime(t)} of ${formatTime(duration)} seconds`);
}

function renderPlayerState() {
  ui.play.textContent = player.playing ? "Pause" : "Play";
  ui.play.setAttribute("aria-label", player.playing ? "Pause both videos" : "Play both videos");
  ui.loop.setAttribute("aria-pressed", String(player.loop));
  ui.speed.value = String(player.rate);
}

function renderProgress() {
  const { judged, available } = state.progress;
  ui.progress.max = Math.max(available, 1);
  ui.progress.value = Math.min(judged, ui.progress.max);
  ui.progressText.textContent = `${judged} judged of ${available}`;
}

function watchedBoth() {
  return player.playedThrough.left && player.playedThrough.right;
}

function updateSubmit() {
  const current = state.current;
  if (!current) {
    ui.submit.disabled = true;
    return;
  }
  let hint = "";
  if (!rubric.complete) hint = `Answer ${rubric.missing} more question${rubric.missing === 1 ? "" : "s"}.`;
  else if (current.require_full_watch && !watchedBoth()) hint = "Watch both videos to the end once.";
  ui.submit.disabled = Boolean(hint) || state.busy;
  ui.submitHint.textContent = hint || "Ready: press Enter to submit.";
  if (rubric.complete) startPrefetch();
}

function setEnlarged(side) {
  const current = ui.videos.dataset.enlarged || "";
  const next = side === current ? "" : side;
  if (next) ui.videos.dataset.enlarged = next;
  else delete ui.videos.dataset.enlarged;
  for (const s of ["left", "right"]) ui.enlarge[s].setAttribute("aria-pressed", String(next === s));
}

function show(data) {
  state.current = data;
  state.progress = { ...data.progress };
  state.prefetchStarted = false;
  ui.prompt.textContent = data.prompt;
  const old = [player.left, player.right].filter(Boolean);
  player.detach();
  for (const video of old) release(video);
  const left = takeVideo("left", data.left);
  const right = takeVideo("right", data.right);
  ui.frames.left.replaceChildren(left);
  ui.frames.right.replaceChildren(right);
  dropPrefetched(); // a hint that did not come true
  const fps = Math.max(data.left.fps || 0, data.right.fps || 0) || 24;
  player.attach(left, right, { fps });
  setEnlarged("");
  rubric.render(data.questions);
  ui.done.hidden = true;
  ui.stage.hidden = false;
  ui.skipOpen.disabled = false;
  state.shownAt = performance.now();
  renderProgress();
  renderTime();
  renderPlayerState();
  updateSubmit();
  rubric.focusCurrent();
  // Muted autoplay: the rater's first keystroke can go to the rubric.
  player.play();
}

function clearStage() {
  const old = [player.left, player.right].filter(Boolean);
  player.detach();
  for (const video of old) release(video);
  dropPrefetched();
  state.current = null;
  ui.stage.hidden = true;
  ui.skipOpen.disabled = true;
}

function focusHeading(heading) {
  heading.setAttribute("tabindex", "-1");
  heading.focus();
}

function showDone(title, text) {
  clearStage();
  ui.completion.hidden = true;
  ui.doneTitle.textContent = title;
  ui.doneText.textContent = text;
  ui.done.hidden = false;
  focusHeading(ui.doneTitle);
}

// The crowd worker's end: the completion code to copy and the link back to the platform.
// Only http(s) return links become links (never javascript: or data:).
function showCompletion({ reason, completion_code: code, completion_url: url }) {
  clearStage();
  ui.done.hidden = true;
  ui.completionText.textContent =
    reason === "quota_reached"
      ? "You have judged all the pairs this study asks of you. Thank you for your careful work!"
      : "You have judged every pair there was for you in this study. Thank you for your careful work!";
  ui.completionCodeRow.hidden = !code;
  ui.completionCode.value = code || "";
  let safeUrl = "";
  try {
    const parsed = new URL(url || "", window.location.href);
    if (url && (parsed.protocol === "https:" || parsed.protocol === "http:")) safeUrl = parsed.href;
  } catch (error) {
    safeUrl = "";
  }
  ui.completionReturnRow.hidden = !safeUrl;
  if (safeUrl) ui.completionReturn.href = safeUrl;
  else ui.completionReturn.removeAttribute("href");
  ui.completion.hidden = false;
  focusHeading($("completion-title"));
}

async function copyCompletionCode() {
  const code = ui.completionCode.value;
  let copied = false;
  try {
    await navigator.clipboard.writeText(code);
    copied = true;
  } catch (error) {
    // No clipboard API (plain http, an old browser): select it so Ctrl+C copies it.
    ui.completionCode.focus();
    ui.completionCode.select();
    copied = document.execCommand && document.execCommand("copy");
  }
  ui.completionCopied.textContent = copied ? "Copied." : "Selected: press Ctrl+C (or ⌘C) to copy.";
}

// Nothing left (204): a rater who earned the project's completion code gets it; others the
// plain end. The server decides (it repeats the rule); the code is never in the page before.
async function showNothingLeft() {
  const url = root.dataset.completionUrl;
  if (url) {
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.status === 200) {
        showCompletion(await response.json());
        return;
      }
    } catch (error) {
      // fall through to the plain end
    }
  }
  showDone("No more pairs", "You have judged every pair available to you in this project. Thank you.");
}

async function loadNext() {
  const { status, data } = await api.post(root.dataset.nextUrl);
  if (status === 200) {
    show(data);
  } else if (status === 204) {
    await showNothingLeft();
  } else if (status === 403 && data && data.code === "quota_reached") {
    showCompletion({ reason: "quota_reached", ...data });
  } else if (status === 403 && data && data.code === "paused") {
    // Calm and never accusing: the reason (which may be an automatic quality check) is for
    // the project's managers, not shown here.
    showDone(
      "Thank you",
      "Thanks — there is nothing for you to rate right now. You may close this page; " +
        "if more pairs become available for you, this page will show them when you come back.",
    );
  } else if (status === 403 && data) {
    showDone("Nothing to rate", data.detail);
  } else {
    announce((data && data.detail) || "Could not load the next pair. Reload the page to try again.");
  }
}

// --- actions ----------------------------------------------------------------------------

async function submit() {
  if (ui.submit.disabled || state.busy || !state.current) return;
  state.busy = true;
  updateSubmit();
  const current = state.current;
  const body = {
    answers: rubric.values(),
    duration_ms: Math.round(performance.now() - state.shownAt),
    watch_left_seconds: Math.round(player.watched.left * 100) / 100,
    watch_right_seconds: Math.round(player.watched.right * 100) / 100,
  };
  const { status, data } = await api.post(current.judgment_url, body);
  state.busy = false;
  if (status === 200) {
    announce("Saved.");
    await loadNext();
  } else if (status === 410 || status === 409) {
    announce(data.detail);
    await loadNext();
  } else if (status === 400 && data && data.answers) {
    rubric.markErrors(data.answers);
    announce(data.detail);
    updateSubmit();
  } else {
    announce((data && data.detail) || "Not saved. Press Enter to try again.");
    updateSubmit();
  }
}

async function skip(reason, note) {
  if (!state.current || state.busy) return;
  state.busy = true;
  const { status, data } = await api.post(state.current.skip_url, { reason, note });
  state.busy = false;
  if (status === 200) {
    announce("Skipped.");
    await loadNext();
  } else {
    announce((data && data.detail) || "Could not skip this pair.");
  }
}

function openSkip() {
  ui.skip.returnValue = "";
  ui.skip.showModal();
}

function changeSpeed(delta) {
  const index = SPEEDS.indexOf(player.rate);
  const next = SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, (index === -1 ? 3 : index) + delta))];
  player.setRate(next);
}

// --- wiring -----------------------------------------------------------------------------

player.addEventListener("time", renderTime);
player.addEventListener("state", renderPlayerState);
player.addEventListener("watch", updateSubmit);
rubric.addEventListener("change", updateSubmit);

ui.play.addEventListener("click", () => player.toggle());
ui.restart.addEventListener("click", () => player.restart());
ui.back.addEventListener("click", () => player.step(-1));
ui.forward.addEventListener("click", () => player.step(1));
ui.loop.addEventListener("click", () => player.setLoop(!player.loop));
ui.speed.addEventListener("change", () => player.setRate(Number(ui.speed.value)));
ui.scrub.addEventListener("input", () => {
  state.scrubbing = true;
  player.seek((Number(ui.scrub.value) / 1000) * player.duration).then(() => {
    state.scrubbing = false;
  });
});
ui.enlarge.left.addEventListener("click", () => setEnlarged("left"));
ui.enlarge.right.addEventListener("click", () => setEnlarged("right"));
ui.submit.addEventListener("click", submit);
ui.instructionsOpen.addEventListener("click", () => ui.instructions.showModal());
ui.skipOpen.addEventListener("click", openSkip);
$("skip-cancel").addEventListener("click", () => ui.skip.close("cancel"));
ui.skip.addEventListener("close", () => {
  // Enter in the dialog submits its form with the default button: "Skip pair".
  if (ui.skip.returnValue === "skip") {
    const form = new FormData(ui.skipForm);
    skip(form.get("reason"), form.get("note") || "");
  }
  ui.skipForm.reset();
  rubric.focusCurrent();
});
ui.instructions.addEventListener("close", () => rubric.focusCurrent());
ui.completionCopy.addEventListener("click", copyCompletionCode);

const TEXT_INPUTS = new Set(["text", "search", "number", "email", "password", "range"]);

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || !state.current) return;
  const target = event.target;
  if (target.closest && target.closest("dialog[open]")) return; // dialogs keep their own keys
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT" || (tag === "INPUT" && TEXT_INPUTS.has(target.type))) {
    if (event.key === "Escape") target.blur();
    return;
  }
  // On a focused button or link, Space and Enter press it, as everywhere else.
  const onControl = tag === "BUTTON" || tag === "A" || tag === "SUMMARY";
  switch (event.key) {
    case "ArrowUp":
      rubric.move(-1);
      break;
    case "ArrowDown":
      rubric.move(1);
      break;
    case "ArrowLeft":
    case "1":
      if (!rubric.choose("left")) announce("This question does not allow Left.");
      break;
    case "t":
    case "T":
    case "2":
      if (!rubric.choose("tie")) announce("This question does not allow a tie.");
      break;
    case "ArrowRight":
    case "3":
      if (!rubric.choose("right")) announce("This question does not allow Right.");
      break;
    case " ":
      if (onControl) return;
      player.toggle();
      break;
    case ",":
      player.step(-1);
      break;
    case ".":
      player.step(1);
      break;
    case "Enter":
      if (onControl) return;
      submit();
      break;
    case "-":
      changeSpeed(-1);
      break;
    case "+":
    case "=":
      changeSpeed(1);
      break;
    case "l":
    case "L":
      player.setLoop(!player.loop);
      break;
    case "r":
    case "R":
      player.restart();
      break;
    case "z":
    case "Z":
      setEnlarged("left");
      break;
    case "x":
    case "X":
      setEnlarged("right");
      break;
    case "Escape":
      setEnlarged("");
      break;
    case "i":
    case "I":
    case "?":
      ui.instructions.showModal();
      break;
    case "s":
    case "S":
      openSkip();
      break;
    default:
      return;
  }
  event.preventDefault();
});

loadNext();
