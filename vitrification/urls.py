from django.urls import path

from vitrification import views

app_name = "vitrification"
urlpatterns = [
    path("", views.vitrify, name="vitrify"),
    path("instruments/", views.instrument_list, name="instrument-list"),
    path("instruments/new/", views.instrument_create, name="instrument-create"),
    path("plunge-runs/", views.plunge_run_list, name="plunge-run-list"),
    path("plunge-runs/new/", views.plunge_run_create, name="plunge-run-create"),
    path("plunge-runs/<int:pk>/", views.plunge_run_detail, name="plunge-run-detail"),
    path("hpf-runs/", views.hpf_run_list, name="hpf-run-list"),
    path("hpf-runs/new/", views.hpf_run_create, name="hpf-run-create"),
    path("hpf-runs/<int:pk>/", views.hpf_run_detail, name="hpf-run-detail"),
]
