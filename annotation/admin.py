from django.contrib import admin

from annotation import models


class QuestionInline(admin.TabularInline):
    model = models.Question
    extra = 0


class MembershipInline(admin.TabularInline):
    model = models.Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "overlap", "lease_seconds", "require_full_watch", "created_at"]
    search_fields = ["name"]
    inlines = [QuestionInline, MembershipInline]


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "user", "role", "paused", "paused_reason", "excluded", "external_id"]
    list_filter = ["role", "paused", "excluded"]
    search_fields = ["user__username", "external_id"]
    raw_id_fields = ["user", "project"]


@admin.register(models.Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "key", "text", "order", "required"]
    list_filter = ["project"]


@admin.register(models.Generator)
class GeneratorAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "name"]
    list_filter = ["project"]


@admin.register(models.Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "external_id", "text"]
    search_fields = ["external_id", "text"]
    list_filter = ["project"]


@admin.register(models.Video)
class VideoAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "prompt", "generator", "status", "duration", "width", "height", "codec"]
    list_filter = ["status", "project", "transcoded"]
    raw_id_fields = ["prompt", "generator", "import_job"]
    readonly_fields = ["public_id", "sha256"]


@admin.register(models.Pair)
class PairAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "prompt", "generator_a", "generator_b", "is_gold", "judgment_count"]
    list_filter = ["project", "is_gold"]
    raw_id_fields = ["prompt", "video_a", "video_b", "generator_a", "generator_b"]


@admin.register(models.Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "pair", "rater", "status", "left_is_a", "expires_at", "skip_reason"]
    list_filter = ["status", "project"]
    raw_id_fields = ["pair", "rater"]


@admin.register(models.Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "pair", "rater", "source", "duration_ms", "flags", "created_at"]
    list_filter = ["project", "source"]
    raw_id_fields = ["pair", "rater", "assignment"]


class ImportRowErrorInline(admin.TabularInline):
    model = models.ImportRowError
    extra = 0


@admin.register(models.ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "kind", "file_name", "status", "total_rows", "created_rows", "error_rows"]
    list_filter = ["kind", "status"]
    inlines = [ImportRowErrorInline]
