from django.urls import path

from beamtime import views

app_name = "beamtime"
urlpatterns = [
    path("", views.calendar_view, name="calendar"),
    path("sessions/", views.session_list, name="session-list"),
    path("sessions/new/", views.session_create, name="session-create"),
    path("sessions/<int:pk>/", views.session_detail, name="session-detail"),
    path("sessions/<int:pk>/transition/", views.session_transition, name="session-transition"),
    path("sessions/<int:pk>/sheet/<int:entry_pk>/remove/", views.sheet_remove, name="sheet-remove"),
    path("sessions/<int:pk>/targets.<str:kind>", views.session_targets, name="session-targets"),
    path("sessions/<int:pk>/shipments/new/", views.shipment_create, name="shipment-create"),
    path("shipments/<int:pk>/", views.shipment_detail, name="shipment-detail"),
    path("shipments/<int:pk>/manifest.<str:kind>", views.shipment_manifest, name="shipment-manifest"),
    path("proposals/", views.proposal_list, name="proposal-list"),
    path("policies/", views.policy_list, name="policy-list"),
    path("policies/<int:beamline_pk>/edit/", views.policy_edit, name="policy-edit"),
    path("feeds/", views.feed_list, name="feed-list"),
    path("feeds/<str:token>.ics", views.feed, name="feed"),
]
