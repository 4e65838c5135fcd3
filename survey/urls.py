from django.contrib import admin
from django.urls import include, path

from survey import kiosk_views, privacy_views, results_views, screen_views, views

attendee_patterns = [
    path("", views.home, name="home"),
    path("s/<slug:slug>/", views.welcome, name="welcome"),
    path("s/<slug:slug>/round/", views.round_view, name="round"),
    path("s/<slug:slug>/finish/", views.finish, name="finish"),
    path("s/<slug:slug>/restart/", views.restart, name="restart"),
    path("s/<slug:slug>/screen/", screen_views.screen, name="screen"),
]

results_patterns = [
    path("", results_views.results, name="index"),
    path("export/", results_views.export, name="export"),
]

kiosk_patterns = [
    path("", kiosk_views.start_default, name="start_default"),
    path("<slug:slug>/", kiosk_views.start, name="start"),
]

urlpatterns = [
    path("", include((attendee_patterns, "survey"))),
    path("kiosk/", include((kiosk_patterns, "kiosk"))),
    path("results/", include((results_patterns, "results"))),
    path("withdraw/", privacy_views.withdraw_view, name="withdraw"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
