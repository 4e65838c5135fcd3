from django.contrib import admin
from django.urls import include, path

from survey import views

attendee_patterns = [
    path("", views.home, name="home"),
    path("s/<slug:slug>/", views.welcome, name="welcome"),
    path("s/<slug:slug>/round/", views.round_view, name="round"),
    path("s/<slug:slug>/finish/", views.finish, name="finish"),
    path("s/<slug:slug>/restart/", views.restart, name="restart"),
]

urlpatterns = [
    path("", include((attendee_patterns, "survey"))),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
