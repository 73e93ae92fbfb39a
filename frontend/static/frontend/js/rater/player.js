// Two <video> elements played as one: one clock, one control bar, kept within a frame.
//
// The longer video is the clock; the other follows while the clock is inside its duration.
// Both start in the same task after being aligned; while playing, a per-frame check nudges
// the follower's rate for small drift and re-aligns both (pause, seek, start together) when
// they are more than a frame apart, when either stalls to buffer, after every seek and after
// every speed change. Events: "time" (position changed), "state" (playing/paused/loop/rate),
// "watch" (watched seconds or played-through changed).

const HAVE_FUTURE_DATA = 3;
const WAIT_LIMIT_MS = 5000;
const HARD_SYNC_GAP_MS = 400;

function finiteDuration(el) {
  return el && Number.isFinite(el.duration) ? el.duration : 0;
}

function whenEvent(el, names, test, limitMs = WAIT_LIMIT_MS) {
  return new Promise((resolve) => {
    if (test()) {
      resolve(true);
      return;
    }
    const done = (ok) => {
      clearTimeout(timer);
      for (const name of names) el.removeEventListener(name, check);
      resolve(ok);
    };
    const check = () => {
      if (test()) done(true);
    };
    const timer = setTimeout(() => done(false), limitMs);
    for (const name of names) el.addEventListener(name, check);
  });
}

function seekElement(el, t) {
  const target = Math.max(0, Math.min(t, finiteDuration(el) || t));
  if (!el.seeking && Math.abs(el.currentTime - target) < 1e-4) return Promise.resolve(true);
  const seeked = whenEvent(el, ["seeked"], () => false);
  el.currentTime = target;
  return seeked;
}

function canPlay(el) {
  return whenEvent(el, ["canplay", "canplaythrough", "loadeddata"], () => el.readyState >= HAVE_FUTURE_DATA);
}

export class SyncPlayer extends EventTarget {
  constructor() {
    super();
    this.left = null;
    this.right = null;
    this.fps = 24;
    this.rate = 1;
    this.loop = false;
    this.wantPlaying = false;
    this.playedThrough = { left: false, right: false };
    this.watched = { left: 0, right: 0 };
    this._last = { left: null, right: null };
    this._listeners = [];
    this._queue = Promise.resolve();
    this._opDepth = 0;
    this._raf = 0;
    this._lastHardSync = 0;
    this._seekTarget = 0;
    this._seekQueued = false;
  }

  // --- wiring ---------------------------------------------------------------------------

  attach(left, right, { fps } = {}) {
    this.detach();
    this.left = left;
    this.right = right;
    this.fps = fps && fps > 0 ? fps : 24;
    this.wantPlaying = false;
    this.playedThrough = { left: false, right: false };
    this.watched = { left: 0, right: 0 };
    this._last = { left: null, right: null };
    for (const [side, el] of [["left", left], ["right", right]]) {
      el.muted = true;
      el.loop = false;
      el.playbackRate = this.rate;
      this._on(el, "timeupdate", () => this._onTime(side, el));
      this._on(el, "seeked", () => {
        this._last[side] = el.currentTime;
      });
      this._on(el, "ended", () => this._onEnded(side));
      this._on(el, "waiting", () => this._onWaiting(el));
      this._on(el, "loadedmetadata", () => this._emit("time"));
      this._on(el, "durationchange", () => this._emit("time"));
    }
    this._emit("state");
    this._emit("time");
  }

  detach() {
    cancelAnimationFrame(this._raf);
    this._raf = 0;
    for (const [el, name, fn] of this._listeners) el.removeEventListener(name, fn);
    this._listeners = [];
    for (const el of [this.left, this.right]) if (el) el.pause();
    this.left = null;
    this.right = null;
    this.wantPlaying = false;
  }

  _on(el, name, fn) {
    el.addEventListener(name, fn);
    this._listeners.push([el, name, fn]);
  }

  _emit(name) {
    this.dispatchEvent(new Event(name));
  }

  // Operations run one after another, so rapid keys never interleave seeks and plays.
  _enqueue(op) {
    const run = async () => {
      this._opDepth += 1;
      try {
        await op();
      } finally {
        this._opDepth -= 1;
      }
    };
    this._queue = this._queue.then(run, run);
    return this._queue;
  }

  // --- state ----------------------------------------------------------------------------

  get ready() {
    return Boolean(this.left && this.right);
  }

  get duration() {
    return Math.max(finiteDuration(this.left), finiteDuration(this.right));
  }

  get currentTime() {
    return this.ready ? this._roles()[0].currentTime : 0;
  }

  get playing() {
    return this.wantPlaying;
  }

  get frame() {
    return 1 / this.fps;
  }

  // [clock, follower]: the longer video is the clock.
  _roles() {
    return finiteDuration(this.right) > finiteDuration(this.left) + 1e-3
      ? [this.right, this.left]
      : [this.left, this.right];
  }

  _sideOf(el) {
    return el === this.left ? "left" : "right";
  }

  // The follower plays only while the clock is inside its duration (a shorter video holds
  // its last frame).
  _followerActive(t) {
    const [, follower] = this._roles();
    return t < finiteDuration(follower) - 1e-3;
  }

  // --- controls -------------------------------------------------------------------------

  play() {
    if (!this.ready) return this._queue;
    this.wantPlaying = true;
    this._emit("state");
    return this._enqueue(async () => {
      if (this.currentTime >= this.duration - 1e-3) await this._seekBoth(0);
      await this._startTogether();
    });
  }

  pause() {
    if (!this.ready) return this._queue;
    this.wantPlaying = false;
    this.left.pause();
    this.right.pause();
    this._emit("state");
    // Paused, the follower shows exactly the clock's frame.
    return this._enqueue(() => this._alignFollower());
  }

  toggle() {
    return this.wantPlaying ? this.pause() : this.play();
  }

  seek(t) {
    if (!this.ready) return this._queue;
    // Coalesce a burst (dragging the scrubber): only the latest target is sought.
    this._seekTarget = Math.max(0, Math.min(t, this.duration));
    if (this._seekQueued) return this._queue;
    this._seekQueued = true;
    return this._enqueue(async () => {
      this._seekQueued = false;
      const resume = this.wantPlaying;
      this.left.pause();
      this.right.pause();
      await this._seekBoth(this._seekTarget);
      if (resume && this.wantPlaying) await this._startTogether();
      this._emit("time");
    });
  }

  step(frames) {
    if (!this.ready) return this._queue;
    this.wantPlaying = false;
    this.left.pause();
    this.right.pause();
    this._emit("state");
    const index = Math.floor(this.currentTime * this.fps + 1e-6) + frames;
    // Aim at the middle of the frame so that rounding never lands on its neighbour.
    return this.seek(Math.max(0, (index + 0.5) / this.fps));
  }

  restart() {
    if (!this.ready) return this._queue;
    this.wantPlaying = true;
    this._emit("state");
    return this._enqueue(async () => {
      this.left.pause();
      this.right.pause();
      await this._seekBoth(0);
      await this._startTogether();
    });
  }

  setRate(rate) {
    this.rate = rate;
    this._emit("state");
    if (!this.ready) return this._queue;
    return this._enqueue(async () => {
      const resume = this.wantPlaying;
      this.left.pause();
      this.right.pause();
      this.left.playbackRate = rate;
      this.right.playbackRate = rate;
      await this._alignFollower();
      if (resume && this.wantPlaying) await this._startTogether();
    });
  }

  setLoop(loop) {
    this.loop = loop;
    this._emit("state");
  }

  // --- synchronisation ------------------------------------------------------------------

  async _seekBoth(t) {
    await Promise.all([seekElement(this.left, t), seekElement(this.right, t)]);
    this._emit("time");
  }

  async _alignFollower() {
    const [clock, follower] = this._roles();
    const t = clock.currentTime;
    const target = Math.min(t, finiteDuration(follower) || t);
    if (Math.abs(follower.currentTime - target) > 1e-3) await seekElement(follower, target);
  }

  async _startTogether() {
    if (!this.wantPlaying) return;
    const [clock, follower] = this._roles();
    clock.pause();
    follower.pause();
    await this._alignFollower();
    await Promise.all([canPlay(clock), canPlay(follower)]);
    if (!this.wantPlaying) return;
    const t = clock.currentTime;
    clock.playbackRate = this.rate;
    follower.playbackRate = this.rate;
    // Both in the same task: they start within a few milliseconds of each other.
    const starts = [clock.play()];
    if (this._followerActive(t)) starts.push(follower.play());
    this._loopTick();
    try {
      await Promise.all(starts);
    } catch (error) {
      // A play() interrupted by a pause or a new source: the next operation decides.
    }
  }

  _loopTick() {
    if (this._raf) return;
    const tick = () => {
      this._raf = 0;
      if (!this.ready || !this.wantPlaying) return;
      this._checkDrift();
      this._raf = requestAnimationFrame(tick);
    };
    this._raf = requestAnimationFrame(tick);
  }

  _checkDrift() {
    if (this._opDepth > 0) return;
    const [clock, follower] = this._roles();
    if (clock.paused || clock.seeking || follower.seeking) return;
    const t = clock.currentTime;
    if (!this._followerActive(t + this.frame)) {
      follower.playbackRate = this.rate;
      return;
    }
    if (follower.paused) {
      // The clock came back inside the follower's duration (after a loop) or it was left behind.
      this._hardSync();
      return;
    }
    const drift = follower.currentTime - t; // > 0: the follower is ahead
    if (Math.abs(drift) > this.frame) {
      this._hardSync();
    } else if (Math.abs(drift) > this.frame / 4) {
      // Close a small gap in about half a second without a visible jump.
      const nudge = Math.max(-0.1, Math.min(0.1, (drift * 2) / this.rate));
      follower.playbackRate = this.rate * (1 - nudge);
    } else if (follower.playbackRate !== this.rate) {
      follower.playbackRate = this.rate;
    }
  }

  _hardSync() {
    const now = performance.now();
    if (now - this._lastHardSync < HARD_SYNC_GAP_MS || this._opDepth > 0) return;
    this._lastHardSync = now;
    this._enqueue(() => this._startTogether());
  }

  _onWaiting(el) {
    // One video stalls to buffer: hold the other, and start both together once it can play.
    if (!this.wantPlaying || this._opDepth > 0 || !this.ready) return;
    const other = el === this.left ? this.right : this.left;
    other.pause();
    this._enqueue(() => this._startTogether());
  }

  // --- what the page reports ------------------------------------------------------------

  _onTime(side, el) {
    if (!el.paused && !el.seeking) {
      const last = this._last[side];
      const now = el.currentTime;
      // Only steady progress counts as watching (a seek jumps).
      if (last !== null && now > last && now - last < 1.5 * Math.max(1, this.rate)) {
        this.watched[side] += now - last;
        this._emit("watch");
      }
      this._last[side] = now;
    }
    if (el === this._roles()[0]) this._emit("time");
  }

  _markPlayedThrough(side) {
    if (!this.playedThrough[side]) {
      this.playedThrough[side] = true;
      this._emit("watch");
    }
  }

  _onEnded(side) {
    this._markPlayedThrough(side);
    const [clock, follower] = this._roles();
    if (this._sideOf(clock) !== side) return; // a shorter follower holds its last frame
    // Equal lengths: the follower may be a hair from its own end when the clock ends. Within
    // two frames it has reached the end too (pausing it now must not cost it "played through").
    if (finiteDuration(follower) - follower.currentTime <= 2 * this.frame) {
      this._markPlayedThrough(this._sideOf(follower));
    }
    if (this.loop && this.wantPlaying) {
      this._enqueue(async () => {
        await this._seekBoth(0);
        await this._startTogether();
      });
    } else {
      this.wantPlaying = false;
      this.left.pause();
      this.right.pause();
      this._emit("state");
      this._emit("time");
    }
  }
}
