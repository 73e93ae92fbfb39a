from django.contrib import admin

from outbox.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "created_at", "attempts", "last_error")
    list_filter = ("task",)
    readonly_fields = ("task", "args", "kwargs", "created_at", "attempts", "last_error")
