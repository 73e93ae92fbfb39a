from django.urls import path

from frontend import views_gold as g
from frontend import views_raters as v

urlpatterns = [
    path("projects/<id:pk>/raters/", v.raters_page, name="project-raters"),
    path("projects/<id:pk>/raters/<id:rater_id>/pause/", v.rater_pause_view, name="project-rater-pause"),
    path("projects/<id:pk>/raters/<id:rater_id>/resume/", v.rater_resume_view, name="project-rater-resume"),
    path("projects/<id:pk>/raters/<id:rater_id>/exclude/", v.rater_exclude_view, name="project-rater-exclude"),
    path("projects/<id:pk>/raters/<id:rater_id>/include/", v.rater_include_view, name="project-rater-include"),
    path("projects/<id:pk>/crowd/settings/", v.crowd_settings_update, name="project-crowd-settings"),
    path("projects/<id:pk>/crowd/invite/rotate/", v.invite_rotate, name="project-invite-rotate"),
    path("projects/<id:pk>/crowd/invite/disable/", v.invite_disable, name="project-invite-disable"),
    path("projects/<id:pk>/gold/", g.gold_page, name="project-gold"),
    path("projects/<id:pk>/gold/<id:pair_id>/", g.gold_set, name="project-gold-set"),
    path("projects/<id:pk>/gold/<id:pair_id>/unmark/", g.gold_unmark, name="project-gold-unmark"),
]
