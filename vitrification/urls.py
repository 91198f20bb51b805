app_name = "vitrification"
urlpatterns: list = []
