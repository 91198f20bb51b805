app_name = "characterization"
urlpatterns: list = []
