from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

from config import views as home
from lims import views

urlpatterns = [
    path("", home.dashboard, name="dashboard"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("labs/", views.lab_list, name="lab-index"),
    path("labs/<int:pk>/", views.lab_detail, name="lab-page"),
    path("account/tokens/", views.token_list, name="api-tokens"),
    path("imports/", views.import_list, name="import-index"),
    path("imports/<slug:slug>/", views.import_run, name="import-run"),
    path("imports/<slug:slug>/template.<str:ext>", views.import_template, name="import-template-file"),
    path("account/tokens/<int:pk>/revoke/", views.token_revoke, name="api-token-revoke"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("grids/", include("grids.urls")),
    path("vitrification/", include("vitrification.urls")),
    path("characterization/", include("characterization.urls")),
    path("beamtime/", include("beamtime.urls")),
    path("reconstruction/", include("reconstruction.urls")),
]
