app_name = "beamtime"
urlpatterns: list = []
