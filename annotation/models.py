"""The domain: projects, rubric, generators, prompts, videos, pairs, assignments, judgments.

Invariants that must never break are constraints in the database (see also the triggers in
migration 0002): one video per prompt and generator; a pair's two videos share its prompt and
come from its two different generators, in canonical order (generator_a.id < generator_b.id);
one judgment per pair and rater; answers only from each question's allowed set.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

# The assignment engine's order among equally full pairs: (id * MULTIPLIER) % MODULUS, a
# Knuth multiplicative hash (a fixed permutation of ids, unrelated to import order).
PAIR_SHUFFLE_MULTIPLIER = 2654435761
PAIR_SHUFFLE_MODULUS = 4294967296

ANSWER_A = "a"
ANSWER_B = "b"
ANSWER_TIE = "tie"
CANONICAL_ANSWERS = (ANSWER_A, ANSWER_B, ANSWER_TIE)

#: The default rubric (the Gen2-vs-Pika study's questions). ``allowed`` is the answer set.
DEFAULT_RUBRIC: list[dict] = [
    {
        "key": "visual_appeal",
        "text": "Which video is more pleasing to watch?",
        "help_text": "Overall look: image quality, aesthetics, absence of artefacts.",
    },
    {
        "key": "text_match",
        "text": "Which video matches the text better?",
        "help_text": "Does the video show what the prompt asks for: objects, attributes, actions?",
    },
    {
        "key": "camera_motion",
        "text": "Which video has better camera motion?",
        "help_text": "Smooth, deliberate camera movement that suits the prompt; no shaking.",
    },
    {
        "key": "object_motion",
        "text": "Which video has more natural object motion?",
        "help_text": "Do people, animals and things move plausibly and with enough motion?",
    },
    {
        "key": "consistency",
        "text": "Which video is more consistent over time?",
        "help_text": "Objects keep their identity, shape and colour; no flicker or morphing.",
    },
    {
        "key": "final_verdict",
        "text": "Overall, which video is better?",
        "help_text": "Your overall preference, taking everything above into account.",
    },
]


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    instructions = models.TextField(blank=True, help_text="Shown to raters, one click away.")
    overlap = models.PositiveSmallIntegerField(default=3, help_text="Raters per pair.")
    lease_seconds = models.PositiveIntegerField(default=900, help_text="How long a pair stays leased.")
    require_full_watch = models.BooleanField(
        default=True, help_text="Both videos must have played through once before answering."
    )
    # Quality control (gold pairs and attention signals).
    gold_rate = models.FloatField(
        default=0.1, help_text="Share of the pairs offered to a rater that are gold pairs (0 to 1)."
    )
    gold_min = models.PositiveSmallIntegerField(
        default=5, help_text="Gold judgments a rater makes before their gold accuracy can pause them."
    )
    gold_accuracy_threshold = models.FloatField(
        default=0.7, help_text="A rater whose gold accuracy falls below this (after gold_min golds) is paused."
    )
    too_fast_seconds = models.FloatField(
        default=4.0, help_text="A judgment submitted sooner than this after display is flagged too_fast."
    )
    # Crowd entry.
    invite_token = models.CharField(
        max_length=64, unique=True, null=True, blank=True, help_text="Secret of the invite link; empty: no link."
    )
    rater_quota = models.PositiveIntegerField(
        null=True, blank=True, help_text="Judgments per rater; empty for no limit."
    )
    completion_code = models.CharField(
        max_length=100, blank=True, help_text="Shown to a rater who reaches the quota (e.g. Prolific's code)."
    )
    completion_url = models.URLField(
        max_length=500, blank=True, help_text="Return link shown with the completion code."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_positive"),
            models.CheckConstraint(condition=Q(lease_seconds__gte=30), name="project_lease_min_30s"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0, gold_rate__lte=1), name="project_gold_rate_0_1"),
            models.CheckConstraint(
                condition=Q(gold_accuracy_threshold__gte=0, gold_accuracy_threshold__lte=1),
                name="project_gold_threshold_0_1",
            ),
            models.CheckConstraint(condition=Q(too_fast_seconds__gte=0), name="project_too_fast_nonnegative"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one project. Managers run it; raters judge its pairs."""

    ROLE_MANAGER = "manager"
    ROLE_RATER = "rater"
    ROLE_CHOICES = [(ROLE_MANAGER, "Project manager"), (ROLE_RATER, "Rater")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=ROLE_CHOICES)
    paused = models.BooleanField(default=False, help_text="A paused rater is offered no pairs.")
    paused_reason = models.CharField(max_length=300, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    # Set when a manager resumes a rater: gold accuracy for the automatic pause then counts only
    # gold judgments made after it, so the same evidence does not pause them again at once.
    resumed_at = models.DateTimeField(null=True, blank=True)
    excluded = models.BooleanField(
        default=False, help_text="Judgments kept but left out of analysis and exports."
    )
    external_id = models.CharField(max_length=200, blank=True, help_text="Crowd platform worker id.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user"),
            models.CheckConstraint(condition=Q(role__in=["manager", "rater"]), name="membership_role_valid"),
            # One account per crowd worker id and project.
            models.UniqueConstraint(
                fields=["project", "external_id"], condition=~Q(external_id=""), name="membership_unique_external_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"


class Question(models.Model):
    """One rubric question. ``allowed`` lists the canonical answers a rater may give."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="questions")
    key = models.SlugField(max_length=64)
    text = models.CharField(max_length=300)
    help_text = models.TextField(blank=True)
    order = models.PositiveSmallIntegerField(default=0)
    allowed = models.JSONField(default=list, help_text='Subset of ["a", "b", "tie"].')
    required = models.BooleanField(default=True)

    class Meta:
        ordering = ["project", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="question_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.text}"


class Generator(models.Model):
    """A text-to-video model under evaluation."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="generators")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="generator_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Prompt(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200)
    text = models.TextField()
    tags = models.JSONField(default=dict, blank=True, help_text='e.g. {"motion": "fast"}')

    class Meta:
        ordering = ["project", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="prompt_unique_external_id"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.text[:60]}"


class ImportJob(models.Model):
    """One uploaded file (manifest, judgments or scores) and its row-by-row report."""

    KIND_MANIFEST = "manifest"
    KIND_JUDGMENTS = "judgments"
    KIND_SCORES = "scores"
    KIND_GOLD = "gold"
    KIND_CHOICES = [
        (KIND_MANIFEST, "Manifest"),
        (KIND_JUDGMENTS, "Judgments"),
        (KIND_SCORES, "Scores"),
        (KIND_GOLD, "Gold answers"),
    ]
    STATUS_RUNNING = "running"
    STATUS_DONE = "done"
    STATUS_FAILED = "failed"
    STATUS_CHOICES = [(STATUS_RUNNING, "Running"), (STATUS_DONE, "Done"), (STATUS_FAILED, "Failed")]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    kind = models.CharField(max_length=16, choices=KIND_CHOICES, default=KIND_MANIFEST)
    file_name = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=STATUS_RUNNING)
    error = models.TextField(blank=True, help_text="Why the whole file was refused, if it was.")
    total_rows = models.PositiveIntegerField(default=0)
    created_rows = models.PositiveIntegerField(default=0)
    unchanged_rows = models.PositiveIntegerField(default=0)
    error_rows = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.kind} import #{self.pk} ({self.file_name})"


class ImportRowError(models.Model):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row = models.PositiveIntegerField(help_text="1-based data row number (header not counted).")
    field = models.CharField(max_length=100, blank=True)
    message = models.TextField()

    class Meta:
        ordering = ["job", "row", "id"]

    def __str__(self) -> str:
        return f"row {self.row}: {self.message[:80]}"


class Video(models.Model):
    STATUS_PENDING = "pending"
    STATUS_READY = "ready"
    STATUS_FAILED = "failed"
    STATUS_CHOICES = [(STATUS_PENDING, "Pending"), (STATUS_READY, "Ready"), (STATUS_FAILED, "Failed")]

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="videos")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="videos")
    generator = models.ForeignKey(Generator, on_delete=models.CASCADE, related_name="videos")
    source = models.CharField(max_length=1000, help_text="The manifest's path or URL.")
    original = models.CharField(max_length=500, blank=True, help_text="Kept original, relative to MEDIA_ROOT.")
    browser = models.CharField(max_length=500, blank=True, help_text="What browsers get, relative to MEDIA_ROOT.")
    poster = models.CharField(max_length=500, blank=True, help_text="JPEG poster, relative to MEDIA_ROOT.")
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds.")
    fps = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    codec = models.CharField(max_length=50, blank=True)
    pix_fmt = models.CharField(max_length=50, blank=True)
    transcoded = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=STATUS_PENDING)
    error = models.TextField(blank=True)
    import_job = models.ForeignKey(ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="videos")
    import_row = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["prompt", "generator"], name="video_one_per_prompt_generator"),
            # Target of the pairs' composite foreign keys (PostgreSQL) and triggers (SQLite).
            models.UniqueConstraint(fields=["id", "prompt", "generator"], name="video_id_prompt_generator"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "ready", "failed"]), name="video_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | ~Q(error=""), name="video_failed_has_reason"
            ),
        ]
        indexes = [models.Index(fields=["project", "status"], name="video_project_status")]

    def __str__(self) -> str:
        return f"video {self.pk} ({self.generator_id}/{self.prompt_id}, {self.status})"


class Pair(models.Model):
    """Two videos of one prompt from different generators, in canonical order (A, B)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="pairs")
    generator_a = models.ForeignKey(Generator, on_delete=models.CASCADE, related_name="+")
    generator_b = models.ForeignKey(Generator, on_delete=models.CASCADE, related_name="+")
    video_a = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="+")
    video_b = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="+")
    is_gold = models.BooleanField(default=False)
    gold_answers = models.JSONField(
        default=dict, blank=True, help_text='question key -> list of accepted answers ("a", "b", "tie")'
    )
    # Kept by the judgment service: how many judgments the pair has (for the assignment engine).
    judgment_count = models.PositiveIntegerField(default=0)
    # Kept by the assignment services: leases that hold one of the pair's overlap slots (their
    # assignments have holds_slot=True). On the pair row itself so that the engine's capacity
    # check (judgment_count + lease_count < overlap) is re-checked under the row lock.
    lease_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["video_a", "video_b"], name="pair_unique_videos"),
            models.CheckConstraint(condition=Q(generator_a__lt=F("generator_b")), name="pair_canonical_order"),
        ]
        indexes = [
            models.Index(fields=["project", "judgment_count"], name="pair_project_count"),
            # The assignment engine's scan: fullest open pairs first, then a fixed pseudo-random
            # order (a multiplicative hash of the id), so that one index range scan with LIMIT
            # answers "closest to completion, random among equals" at any number of pairs.
            # is_gold second: normal pairs are one contiguous range (gold pairs, judged by every
            # rater and so the fullest, never sit in front of them), and the gold pick reads the
            # gold range backwards (least judged gold first).
            models.Index(
                F("project"),
                F("is_gold"),
                (F("judgment_count") + F("lease_count")).desc(),
                (F("id") * PAIR_SHUFFLE_MULTIPLIER) % PAIR_SHUFFLE_MODULUS,
                name="pair_assignment_order",
            ),
        ]

    def __str__(self) -> str:
        return f"pair {self.pk} (videos {self.video_a_id} vs {self.video_b_id})"


class Assignment(models.Model):
    """A lease of one pair to one rater, with the side drawn for display."""

    STATUS_ACTIVE = "active"
    STATUS_JUDGED = "judged"
    STATUS_SKIPPED = "skipped"
    STATUS_CHOICES = [(STATUS_ACTIVE, "Active"), (STATUS_JUDGED, "Judged"), (STATUS_SKIPPED, "Skipped")]
    SKIP_BROKEN = "video_broken"
    SKIP_CANNOT_JUDGE = "cannot_judge"
    SKIP_INAPPROPRIATE = "inappropriate"
    SKIP_REASONS = [
        (SKIP_BROKEN, "A video is broken"),
        (SKIP_CANNOT_JUDGE, "I cannot judge this pair"),
        (SKIP_INAPPROPRIATE, "Inappropriate content"),
    ]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    left_is_a = models.BooleanField(help_text="True when video A is shown on the left.")
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=STATUS_ACTIVE)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    skip_reason = models.CharField(max_length=32, choices=SKIP_REASONS, blank=True)
    skip_note = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # True while this lease occupies one of the pair's overlap slots (counted in
    # Pair.lease_count): from leasing until it is judged, skipped or reclaimed after expiry.
    holds_slot = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["pair", "rater"], name="assignment_unique_pair_rater"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "judged", "skipped"]), name="assignment_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="skipped") | ~Q(skip_reason=""), name="assignment_skip_has_reason"
            ),
            models.CheckConstraint(
                condition=Q(holds_slot=False) | Q(status="active"), name="assignment_slot_only_active"
            ),
            # A rater holds at most one lease per project (two tabs cannot take two pairs).
            models.UniqueConstraint(
                fields=["rater", "project"], condition=Q(holds_slot=True), name="assignment_one_lease_per_rater"
            ),
        ]
        indexes = [
            models.Index(fields=["pair", "status", "expires_at"], name="assignment_pair_active"),
            models.Index(fields=["rater", "project", "status"], name="assignment_rater_status"),
            # Finding expired leases to reclaim: tiny, only live leases are in it.
            models.Index(
                fields=["project", "expires_at"], condition=Q(holds_slot=True), name="assignment_lease_expiry"
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} (pair {self.pair_id}, rater {self.rater_id}, {self.status})"


class Judgment(models.Model):
    """One rater's answers for one pair, in canonical terms: {question key: "a" | "b" | "tie"}."""

    SOURCE_APP = "app"
    SOURCE_IMPORT = "import"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="judgments")
    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="judgments")
    rater = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="judgments")
    assignment = models.OneToOneField(
        Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="judgment"
    )
    answers = models.JSONField()
    left_is_a = models.BooleanField(null=True, help_text="What was shown where; null for imported judgments.")
    duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="First display to submit.")
    watch_a_seconds = models.FloatField(null=True, blank=True)
    watch_b_seconds = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=16, default=SOURCE_APP)
    flags = models.JSONField(default=list, blank=True, help_text="Attention flags, e.g. too_fast.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["pair", "rater"], name="judgment_unique_pair_rater"),
        ]
        indexes = [
            models.Index(fields=["project", "id"], name="judgment_project_id"),
            models.Index(fields=["project", "updated_at", "id"], name="judgment_project_updated"),
        ]

    def __str__(self) -> str:
        return f"judgment {self.pk} (pair {self.pair_id}, rater {self.rater_id})"


class ExportJob(models.Model):
    """An export too large to stream in one request: written to a file by a task, then downloaded.

    ``options`` holds the validated export options (see ``annotation.exports.spec``); the file
    lives under ``settings.EXPORT_ROOT`` (never served as media: only the download endpoint,
    which checks the project role, reads it).
    """

    STATUS_PENDING = "pending"
    STATUS_RUNNING = "running"
    STATUS_DONE = "done"
    STATUS_FAILED = "failed"
    STATUS_CHOICES = [
        (STATUS_PENDING, "Pending"),
        (STATUS_RUNNING, "Running"),
        (STATUS_DONE, "Done"),
        (STATUS_FAILED, "Failed"),
    ]

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="export_jobs")
    kind = models.CharField(max_length=16)
    format = models.CharField(max_length=16)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=STATUS_PENDING)
    error = models.TextField(blank=True)
    rows_expected = models.PositiveIntegerField(default=0, help_text="Judgments read (for progress).")
    rows_read = models.PositiveIntegerField(default=0)
    rows_written = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=300, blank=True)
    file_path = models.CharField(max_length=500, blank=True, help_text="Relative to EXPORT_ROOT.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "done", "failed"]), name="exportjob_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} export #{self.pk} ({self.format}, {self.status})"
