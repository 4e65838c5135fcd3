import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create the organizer login (a superuser) with a random password and print it. "
        "An existing login keeps its password unless --reset is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="organizer")
        parser.add_argument(
            "--password-file",
            help="File that keeps the generated password, so that later runs can print it.",
        )
        parser.add_argument("--reset", action="store_true", help="Set a new random password.")

    def handle(self, *args, username: str, password_file: str | None, reset: bool, **options):
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        stored = Path(password_file) if password_file else None
        if user is not None and not reset:
            if stored and stored.is_file():
                password = stored.read_text().strip()
                if user.check_password(password):
                    self._print(username, password)
                    return
            self.stdout.write(
                f"Organizer login {username!r} exists; its password is unchanged. "
                "Use --reset to set a new one."
            )
            return

        password = secrets.token_urlsafe(12)
        if user is None:
            user_model.objects.create_superuser(username=username, email="", password=password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        if stored:
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_text(password + "\n")
            stored.chmod(0o600)
        self._print(username, password)

    def _print(self, username: str, password: str) -> None:
        self.stdout.write(
            self.style.SUCCESS(f"Organizer login: username {username}, password {password}")
        )
