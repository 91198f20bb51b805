app_name = "reconstruction"
urlpatterns: list = []
