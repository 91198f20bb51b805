from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config import views as home
from lims import views

urlpatterns = [
    path("", home.dashboard, name="dashboard"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("labs/", views.lab_list, name="lab-index"),
    path("labs/<int:pk>/", views.lab_detail, name="lab-page"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("grids/", include("grids.urls")),
    path("vitrification/", include("vitrification.urls")),
    path("characterization/", include("characterization.urls")),
    path("beamtime/", include("beamtime.urls")),
    path("reconstruction/", include("reconstruction.urls")),
]
