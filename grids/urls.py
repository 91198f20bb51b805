from django.urls import path

from grids import views

app_name = "grids"
urlpatterns = [
    path("", views.grid_list, name="grid-list"),
    path("bulk/", views.grid_bulk, name="grid-bulk"),
    path("labels/", views.label_sheet, name="label-sheet"),
    path("qc/", views.qc_dashboard, name="qc-dashboard"),
    path("qc/<slug:panel>/<slug:chart>.csv", views.qc_dashboard_csv, name="qc-dashboard-csv"),
    path("<int:pk>/", views.grid_detail, name="grid-detail"),
    path("<int:pk>/label/", views.grid_label, name="grid-label"),
    path("lots/", views.lot_list, name="lot-list"),
    path("lots/new/", views.lot_create, name="lot-create"),
    path("lots/<int:pk>/", views.lot_detail, name="lot-detail"),
    path("boxes/", views.box_list, name="box-list"),
    path("boxes/<int:pk>/", views.box_detail, name="box-detail"),
    path("cell-lines/", views.cell_line_list, name="cellline-list"),
    path("seedings/", views.seeding_list, name="seeding-list"),
    path("seedings/new/", views.seeding_create, name="seeding-create"),
    path("seedings/<int:pk>/", views.seeding_detail, name="seeding-detail"),
]
