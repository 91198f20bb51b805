"""Shared API pieces (lab scoping, scoped related fields) and the labs endpoint."""

from __future__ import annotations

from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from lims import permissions, selectors, services
from lims.csv_export import CSVExportMixin
from lims.models import Lab, Membership, Role


class LabField(serializers.PrimaryKeyRelatedField):
    """A lab the requesting user belongs to; any other id reads as nonexistent."""

    def get_queryset(self):
        request = self.context.get("request")
        return permissions.scope(Lab.objects.all(), request.user, "pk") if request else Lab.objects.none()


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """A related record from the user's labs only (`lab_field` names the path to its lab)."""

    def __init__(self, *, lab_field: str = "lab", **kwargs):
        self.lab_field = lab_field
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        qs = super().get_queryset()
        return permissions.scope(qs, request.user, self.lab_field) if request else qs.none()


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "joined_at"]


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class LabSerializer(serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField()

    class Meta:
        model = Lab
        fields = ["id", "name", "code", "institution", "allow_self_review", "my_role", "created_at"]
        read_only_fields = ["created_at"]

    def get_my_role(self, lab: Lab) -> str | None:
        return permissions.lab_roles(self.context["request"].user).get(lab.pk)


class LabViewSet(
    CSVExportMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Labs the user belongs to. Creating a lab makes its creator the lab admin."""

    serializer_class = LabSerializer
    filterset_fields = ["code"]
    search_fields = ["name", "code", "institution"]
    ordering_fields = ["name", "code", "created_at"]

    def get_queryset(self):
        return selectors.lab_list(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.lab_create(
            name=data["name"], code=data["code"], institution=data.get("institution", ""), by=self.request.user
        )

    @action(detail=True, methods=["get", "post"], serializer_class=MemberAddSerializer)
    def members(self, request, pk=None):
        """GET lists the members; POST {"username", "role"} adds one (lab admins only)."""
        lab = self.get_object()
        if request.method == "GET":
            return Response(MembershipSerializer(selectors.membership_list(lab=lab), many=True).data)
        payload = MemberAddSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        membership = services.membership_add(lab=lab, by=request.user, **payload.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


def register(router) -> None:
    router.register("labs", LabViewSet, basename="lab")
