"""`manage.py api_token_create USER [--name N] [--read-only]`: a named API token for a script; prints the key once."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from lims.errors import DomainError
from lims.tokens import api_token_create


class Command(BaseCommand):
    help = "Create a named API token for USER and print its key (stored hashed: it is shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="What the token is for")
        parser.add_argument("--read-only", action="store_true", help="Only reads; every write is refused")

    def handle(self, *args, username, name, read_only, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}; create it first (manage.py createsuperuser).")
        try:
            _, key = api_token_create(user=user, name=name, read_only=read_only)
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(key)
