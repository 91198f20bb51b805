from django.urls import path

from reconstruction import views

app_name = "reconstruction"
urlpatterns = [
    path("", views.index, name="index"),
    path("guide/", views.guide, name="guide"),
    path("guide/<slug:name>.png", views.guide_picture, name="guide-picture"),
    path("datasets/add/", views.dataset_add, name="dataset-add"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<int:pk>/decide/", views.dataset_decide, name="dataset-decide"),
    path("datasets/<int:pk>/reconstruct/", views.job_create, name="job-create"),
    path("datasets/<int:pk>/montage.png", views.dataset_montage, name="dataset-montage"),
    path("datasets/<int:pk>/ro-crate.zip", views.dataset_ro_crate, name="dataset-ro-crate"),
    path("jobs/<int:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
    path("volumes/<int:pk>/", views.volume_detail, name="volume-detail"),
    path("volumes/<int:pk>/download/", views.volume_download, name="volume-download"),
    path("volumes/<int:pk>/ro-crate.zip", views.volume_ro_crate, name="volume-ro-crate"),
    path("volumes/<int:pk>/preview/<str:plane>.png", views.volume_preview, name="volume-preview"),
    path("volumes/<int:pk>/slice/<str:plane>.png", views.volume_slice, name="volume-slice"),
]
