"""/api/v1/: one router; each app adds its endpoints through its api.register()."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from beamtime import api as beamtime_api
from characterization import api as characterization_api
from grids import api as grids_api
from lims import api as lims_api
from lims.api_base import Router
from reconstruction import api as reconstruction_api
from vitrification import api as vitrification_api

router = Router()
for module in (lims_api, grids_api, vitrification_api, characterization_api, beamtime_api, reconstruction_api):
    module.register(router)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("", include(router.urls)),
]
