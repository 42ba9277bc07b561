"""Admin pages: criteria by what they match, flags with their conflicts; bulk actions."""

from __future__ import annotations

from django.contrib import admin

from avsb.contrib.affect.models import Criteria, Flag


@admin.register(Criteria)
class CriteriaAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "note",
        "flag_names",
        "persistent",
        "everyone",
        "testing",
        "percent",
        "superusers",
        "staff",
        "authenticated",
        "device_type",
        "modified",
    )
    list_filter = ("persistent", "everyone", "testing", "superusers", "staff", "authenticated", "device_type", "flags")
    search_fields = ("name", "note", "flags__name", "entry_url", "referrer")
    filter_horizontal = ("flags", "groups")
    raw_id_fields = ("users",)
    readonly_fields = ("created", "modified")
    fieldsets = (
        (None, {"fields": ("name", "flags", "note")}),
        ("Active for", {"fields": ("everyone", "percent", "testing", "superusers", "staff", "authenticated", "groups", "users")}),
        ("Browsing", {"fields": ("entry_url", "referrer", "device_type", "query_args")}),
        ("Cookies", {"fields": ("persistent", "max_cookie_age")}),
        ("History", {"fields": ("created", "modified")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("flags")

    @admin.display(description="flags")
    def flag_names(self, obj: Criteria) -> str:
        return ", ".join(f.name for f in obj.flags.all())


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("name", "active", "priority", "conflict_names", "note", "modified")
    list_filter = ("active",)
    list_editable = ("active", "priority")
    search_fields = ("name", "note")
    filter_horizontal = ("conflicts",)
    readonly_fields = ("created", "modified")
    actions = ("activate", "deactivate")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("conflicts")

    @admin.display(description="conflicts")
    def conflict_names(self, obj: Flag) -> str:
        return ", ".join(f.name for f in obj.conflicts.all())

    @admin.action(description="Activate selected flags")
    def activate(self, request, queryset) -> None:
        for flag in queryset:  # save() each, so caches are invalidated and history is logged
            flag.active = True
            flag.save()
            self.log_change(request, flag, "Activated")

    @admin.action(description="Deactivate selected flags")
    def deactivate(self, request, queryset) -> None:
        for flag in queryset:
            flag.active = False
            flag.save()
            self.log_change(request, flag, "Deactivated")
