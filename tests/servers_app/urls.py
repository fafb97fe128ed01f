from django.urls import path

from tests.servers_app import views

urlpatterns = [
    path("ping", views.ping),
    path("page", views.page),
    path("async-page", views.async_page),
    path("hit", views.hit),
    path("async-hit", views.async_hit),
    path("stats", views.stats),
]
