from django.urls import path

from characterization import views

app_name = "characterization"
urlpatterns = [
    path("checks/", views.check_list, name="check-list"),
    path("checks/new/<int:grid_pk>/", views.check_create, name="check-create"),
    path("checks/<int:pk>/", views.check_detail, name="check-detail"),
    path("checks/<int:pk>/edit/", views.check_edit, name="check-edit"),
    path("checks/<int:pk>/upload/", views.check_upload, name="check-upload"),
    path("checks/<int:pk>/decide/", views.check_decide, name="check-decide"),
    path("images/<int:pk>/", views.image_detail, name="image-detail"),
    path("images/<int:pk>/original/", views.image_file, {"which": "original"}, name="image-original"),
    path("images/<int:pk>/preview.jpg", views.image_file, {"which": "preview"}, name="image-preview"),
    path("images/<int:pk>/thumbnail.jpg", views.image_file, {"which": "thumbnail"}, name="image-thumbnail"),
    path("images/<int:pk>/channel-<int:index>.jpg", views.image_file, {"which": "channel"}, name="image-channel"),
    path("review/", views.review_queue, name="review-queue"),
]
